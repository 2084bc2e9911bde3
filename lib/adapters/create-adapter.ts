import type { Clock } from '../core/clock.js';
import type { ConnectionAdapter } from '../core/connection-adapter.interface.js';
import type { MonitorOptions, MonitorOptionsInput } from '../core/monitor-options.js';
import { OptionChecker, optionNames } from '../core/option-checker.js';
import type { CallbackReport } from '../core/user-callback.js';
import type { ConnectionDefinition, TypeOrmConnectionDefinition } from '../interfaces/connection-definition.interface.js';
import { CustomAdapter, type CustomConnection } from './custom/custom.adapter.js';
import type { TcpKeepAliveOptions } from './tcp-keepalive.js';
import { createImapAdapter, IMAP_OPTIONS } from './imap/imap-adapter.factory.js';
import { createStompAdapter } from './stomp/stomp-adapter.factory.js';
import { STOMP_OPTIONS } from './stomp/stomp-options.js';
import { TcpAdapter, type TcpAdapterOptions } from './tcp/tcp.adapter.js';
import type { DataSourceLike } from './typeorm/data-source-like.js';
import { TypeOrmAdapter } from './typeorm/typeorm.adapter.js';

type ConnectionKind = ConnectionDefinition['kind'];
/** What every connection takes, whatever its kind. */
type CommonOption = 'name' | 'kind' | 'required' | keyof MonitorOptionsInput;

export const CONNECTION_OPTIONS = optionNames<Pick<TypeOrmConnectionDefinition, CommonOption>>({
  name: true,
  kind: true,
  required: true,
  heartbeat: true,
  suspicion: true,
  reconnect: true,
  failure: true,
});
export const TYPEORM_OPTIONS = optionNames<Omit<TypeOrmConnectionDefinition, CommonOption>>({ dataSource: true, pingQuery: true, postgresKeepAlive: true });
export const POSTGRES_KEEPALIVE_OPTIONS = optionNames<NonNullable<TypeOrmConnectionDefinition['postgresKeepAlive']>>({ initialDelayMs: true });
export const TCP_OPTIONS = optionNames<TcpAdapterOptions>({ host: true, port: true, mode: true, keepAlive: true });
export const CUSTOM_OPTIONS = optionNames<CustomConnection>({ ping: true, open: true, close: true, target: true });
export const KEEPALIVE_OPTIONS = optionNames<TcpKeepAliveOptions>({ idleMs: true, intervalMs: true, count: true, userTimeoutMs: true });

/** The options of each kind beside those of every connection; each list sits beside its kind's checks. */
export const KIND_OPTIONS: Readonly<Record<ConnectionKind, readonly string[]>> = {
  typeorm: TYPEORM_OPTIONS,
  tcp: TCP_OPTIONS,
  custom: CUSTOM_OPTIONS,
  imap: IMAP_OPTIONS,
  stomp: STOMP_OPTIONS,
};
const CONNECTION_KINDS = Object.keys(KIND_OPTIONS) as ConnectionKind[];

/**
 * Defaults of a kind, under the module's and the connection's own. An IMAP session idles for minutes
 * between commands by nature, so a NOOP every 2 minutes keeps it well under a 350-600 s load balancer
 * idle timeout without chatter.
 */
export function kindDefaults(kind: ConnectionKind): MonitorOptionsInput {
  return kind === 'imap' ? { heartbeat: { intervalMs: 120_000 } } : {};
}

/**
 * The first check of a connection, wherever it was declared: an object with a name, a known kind, and no
 * key its kind does not take. Returns the checker of its options, whose messages name the connection, and
 * the decorated member too for one declared by a decorator (its name alone does not say where to look).
 *
 * @param declaredBy where the definition comes from: `ConnectionHealthModule.forRoot() connections[0]`, or
 *   a decorated member, e.g. `@MonitorConnection on MailWatcher.client`
 */
export function checkConnection(definition: ConnectionDefinition, declaredBy: string, fromDecorator: boolean): OptionChecker {
  const entry = new OptionChecker('?', declaredBy);
  entry.that(
    typeof definition === 'object' && definition !== null && !Array.isArray(definition),
    'connection',
    definition,
    "Pass an object such as { name: 'db', kind: 'typeorm', dataSource: DataSource }.",
  );
  entry.text('name', definition.name);
  const check = new OptionChecker(definition.name, `Connection "${definition.name}"${fromDecorator ? ` (${declaredBy})` : ''}`);
  check.oneOf('kind', definition.kind, CONNECTION_KINDS, false);
  const owner = `${/^[aeiou]/.test(definition.kind) ? 'an' : 'a'} ${definition.kind} connection`;
  check.knownKeys(undefined, definition, [...CONNECTION_OPTIONS, ...KIND_OPTIONS[definition.kind]], owner);
  check.oneOf('required', definition.required, [true, false]);
  return check;
}

/** What an adapter takes from its surroundings rather than from its options. */
export interface AdapterContext {
  /** The monitor's clock: an adapter that measures time (an IMAP session's age) reads the same time. */
  readonly clock: Clock;
  /** For kind 'typeorm': the data source already resolved from its token by the caller. */
  readonly dataSource?: DataSourceLike;
  /** The checker checkConnection() returned; by default messages name the connection only. */
  readonly check?: OptionChecker;
  /** Logs an app's callback that the adapter itself calls (a STOMP onMessage) and that failed. */
  readonly report: CallbackReport;
}

/**
 * Checks the kind-specific options of a connection, and that the client library it needs is installed,
 * and builds its adapter.
 */
export function createAdapter(definition: ConnectionDefinition, options: MonitorOptions, context: AdapterContext): ConnectionAdapter {
  const check = context.check ?? new OptionChecker(definition.name);
  switch (definition.kind) {
    case 'typeorm':
      if (definition.pingQuery !== undefined) check.text('pingQuery', definition.pingQuery);
      if (definition.postgresKeepAlive !== undefined) {
        check.knownKeys('postgresKeepAlive', definition.postgresKeepAlive, POSTGRES_KEEPALIVE_OPTIONS);
        check.duration('postgresKeepAlive.initialDelayMs', definition.postgresKeepAlive?.initialDelayMs);
      }
      return new TypeOrmAdapter(context.dataSource as DataSourceLike, definition.name, {
        pingQuery: definition.pingQuery,
        postgresKeepAlive: definition.postgresKeepAlive,
        connectTimeoutMs: options.heartbeat.connectTimeoutMs,
      });
    case 'tcp':
      check.text('host', definition.host);
      check.that(
        Number.isInteger(definition.port) && definition.port >= 1 && definition.port <= 65_535,
        'port',
        definition.port,
        'Use a whole number from 1 to 65535.',
      );
      check.oneOf('mode', definition.mode, ['probe', 'hold']);
      checkKeepAlive(check, definition.keepAlive);
      return new TcpAdapter(definition);
    case 'custom':
      check.fn('ping', definition.ping, true, '(signal: AbortSignal) => Promise<unknown>');
      check.fn('open', definition.open, false, '(signal: AbortSignal) => Promise<unknown>');
      check.fn('close', definition.close, false, '(signal: AbortSignal) => Promise<unknown>');
      if (definition.target !== undefined) check.text('target', definition.target);
      return new CustomAdapter(definition);
    case 'imap':
      return createImapAdapter(definition, options, check, context.clock);
    case 'stomp':
      checkKeepAlive(check, definition.keepAlive);
      return createStompAdapter(definition.name, definition, options, check, context.report);
    default:
      check.oneOf('kind', (definition as { kind: unknown }).kind, CONNECTION_KINDS, false);
      throw new Error('unreachable');
  }
}

/** Checks the kernel keepalive options of a connection whose socket the package owns. */
function checkKeepAlive(check: OptionChecker, keepAlive: TcpKeepAliveOptions | undefined): void {
  if (keepAlive === undefined) return;
  check.knownKeys('keepAlive', keepAlive, KEEPALIVE_OPTIONS);
  for (const option of ['idleMs', 'intervalMs', 'userTimeoutMs'] as const) {
    // The kernel counts whole seconds for idle and interval, milliseconds for the user timeout.
    if (keepAlive[option] !== undefined) check.duration(`keepAlive.${option}`, keepAlive[option]);
  }
  if (keepAlive.count !== undefined) check.count('keepAlive.count', keepAlive.count);
}
