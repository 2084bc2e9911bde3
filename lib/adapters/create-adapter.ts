import type { DataSource } from 'typeorm';
import type { ConnectionAdapter } from '../core/connection-adapter.interface.js';
import type { MonitorOptions } from '../core/monitor-options.js';
import { OptionChecker } from '../core/option-checker.js';
import type { ConnectionDefinition } from '../interfaces/connection-definition.interface.js';
import { CustomAdapter } from './custom/custom.adapter.js';
import { TcpAdapter } from './tcp/tcp.adapter.js';
import { TypeOrmAdapter } from './typeorm/typeorm.adapter.js';

export const CONNECTION_KINDS = ['typeorm', 'tcp', 'custom'] as const;

/**
 * Checks the kind-specific options of a connection and builds its adapter. `dataSource` is the TypeORM
 * data source already resolved from its token by the caller.
 */
export function createAdapter(
  definition: ConnectionDefinition,
  options: MonitorOptions,
  dataSource?: DataSource,
): ConnectionAdapter {
  const check = new OptionChecker(definition.name);
  switch (definition.kind) {
    case 'typeorm':
      if (definition.pingQuery !== undefined) check.text('pingQuery', definition.pingQuery);
      if (definition.postgresKeepAlive !== undefined) {
        check.duration('postgresKeepAlive.initialDelayMs', definition.postgresKeepAlive?.initialDelayMs);
      }
      return new TypeOrmAdapter(dataSource as DataSource, {
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
      if (definition.keepAliveInitialDelayMs !== undefined) {
        check.duration('keepAliveInitialDelayMs', definition.keepAliveInitialDelayMs);
      }
      return new TcpAdapter(definition);
    case 'custom':
      check.fn('ping', definition.ping, true, '(signal: AbortSignal) => Promise<unknown>');
      check.fn('open', definition.open, false, '(signal: AbortSignal) => Promise<unknown>');
      check.fn('close', definition.close, false, '(signal: AbortSignal) => Promise<unknown>');
      return new CustomAdapter(definition);
    default:
      check.oneOf('kind', (definition as { kind: unknown }).kind, CONNECTION_KINDS, false);
      throw new Error('unreachable');
  }
}
