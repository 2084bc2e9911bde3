import type { ConnectionDefinitionBase } from '../../core/connection-definition.js';
import { optionNames, type OptionChecker } from '../../core/option-checker.js';
import type { ConnectionKindSpec, ProviderToken } from '../connection-kind.js';
import type { DataSourceLike } from './data-source-like.js';
import { TypeOrmAdapter, type TypeOrmAdapterOptions } from './typeorm.adapter.js';

export interface TypeOrmConnectionDefinition extends ConnectionDefinitionBase, Omit<TypeOrmAdapterOptions, 'connectTimeoutMs'> {
  kind: 'typeorm';
  /** The DataSource itself, or the token of its provider (e.g. `DataSource`, or `getDataSourceToken('orders')`). */
  dataSource: DataSourceLike | ProviderToken;
}

export const TYPEORM_OPTIONS = optionNames<Omit<TypeOrmConnectionDefinition, keyof ConnectionDefinitionBase | 'kind'>>({
  dataSource: true,
  pingQuery: true,
  postgresKeepAlive: true,
});
export const POSTGRES_KEEPALIVE_OPTIONS = optionNames<NonNullable<TypeOrmConnectionDefinition['postgresKeepAlive']>>({ initialDelayMs: true });

/** A TypeORM DataSource of any driver; a decorated member holds it, returns it, or is the method that does. */
export const typeormKind: ConnectionKindSpec<TypeOrmConnectionDefinition, Omit<TypeOrmConnectionDefinition, 'dataSource'>> = {
  kind: 'typeorm',
  options: TYPEORM_OPTIONS,
  defaults: {},
  create(definition, options, { check, provider }) {
    const dataSource = resolveDataSource(check, definition.dataSource, provider);
    if (definition.pingQuery !== undefined) check.text('pingQuery', definition.pingQuery);
    if (definition.postgresKeepAlive !== undefined) {
      check.knownKeys('postgresKeepAlive', definition.postgresKeepAlive, POSTGRES_KEEPALIVE_OPTIONS);
      check.duration('postgresKeepAlive.initialDelayMs', definition.postgresKeepAlive?.initialDelayMs);
    }
    return new TypeOrmAdapter(dataSource, definition.name, {
      pingQuery: definition.pingQuery,
      postgresKeepAlive: definition.postgresKeepAlive,
      connectTimeoutMs: options.heartbeat.connectTimeoutMs,
    });
  },
  fromMember: (options, { value, method }) => ({ definition: { ...options, dataSource: (method ? method() : value) as DataSourceLike }, keepsClient: false }),
};

/** The data source given, or the one the app provides under the token given. */
function resolveDataSource(check: OptionChecker, given: unknown, provider: ((token: ProviderToken) => unknown) | undefined): DataSourceLike {
  if (isDataSource(given)) return given;
  check.that(
    given !== undefined && given !== null,
    'dataSource',
    given,
    'Pass the DataSource, or the token of its provider (e.g. DataSource or getDataSourceToken(name)).',
  );
  const found = provider?.(given as ProviderToken);
  check.that(
    isDataSource(found),
    'dataSource',
    typeof given === 'function' ? given.name : given,
    'No provider with that token holds a TypeORM DataSource. Register the DataSource as a provider ' +
      '(TypeOrmModule.forRoot does), import its module, or pass the instance itself.',
  );
  return found as DataSourceLike;
}

function isDataSource(value: unknown): value is DataSourceLike {
  const candidate = value as Partial<DataSourceLike> | null | undefined;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.initialize === 'function' &&
    typeof candidate.query === 'function' &&
    typeof candidate.options === 'object'
  );
}
