import type { DataSource } from 'typeorm';
import type { Clock } from '../core/clock.js';
import type { ConnectionAdapter } from '../core/connection-adapter.interface.js';
import type { MonitorOptions, MonitorOptionsInput } from '../core/monitor-options.js';
import { OptionChecker } from '../core/option-checker.js';
import type { ConnectionDefinition } from '../interfaces/connection-definition.interface.js';
import { CustomAdapter } from './custom/custom.adapter.js';
import type { TcpKeepAliveOptions } from './tcp-keepalive.js';
import { createImapAdapter } from './imap/imap-adapter.factory.js';
import { createStompAdapter } from './stomp/stomp-adapter.factory.js';
import { TcpAdapter } from './tcp/tcp.adapter.js';
import { TypeOrmAdapter } from './typeorm/typeorm.adapter.js';

const CONNECTION_KINDS = ['typeorm', 'tcp', 'custom', 'imap', 'stomp'] as const;

/**
 * Defaults of a kind, under the module's and the connection's own. An IMAP session idles for minutes
 * between commands by nature, so a NOOP every 2 minutes keeps it well under a 350-600 s load balancer
 * idle timeout without chatter.
 */
export function kindDefaults(kind: ConnectionDefinition['kind']): MonitorOptionsInput {
  return kind === 'imap' ? { heartbeat: { intervalMs: 120_000 } } : {};
}

/** What an adapter takes from its surroundings rather than from its options. */
export interface AdapterContext {
  /** The monitor's clock: an adapter that measures time (an IMAP session's age) reads the same time. */
  readonly clock: Clock;
  /** For kind 'typeorm': the data source already resolved from its token by the caller. */
  readonly dataSource?: DataSource;
}

/** Checks the kind-specific options of a connection and builds its adapter. */
export function createAdapter(definition: ConnectionDefinition, options: MonitorOptions, context: AdapterContext): ConnectionAdapter {
  const check = new OptionChecker(definition.name);
  switch (definition.kind) {
    case 'typeorm':
      if (definition.pingQuery !== undefined) check.text('pingQuery', definition.pingQuery);
      if (definition.postgresKeepAlive !== undefined) {
        check.duration('postgresKeepAlive.initialDelayMs', definition.postgresKeepAlive?.initialDelayMs);
      }
      return new TypeOrmAdapter(context.dataSource as DataSource, {
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
      return new CustomAdapter(definition);
    case 'imap':
      return createImapAdapter(definition, options, check, context.clock);
    case 'stomp':
      checkKeepAlive(check, definition.keepAlive);
      return createStompAdapter(definition.name, definition, options, check);
    default:
      check.oneOf('kind', (definition as { kind: unknown }).kind, CONNECTION_KINDS, false);
      throw new Error('unreachable');
  }
}

/** Checks the kernel keepalive options of a connection whose socket the package owns. */
function checkKeepAlive(check: OptionChecker, keepAlive: TcpKeepAliveOptions | undefined): void {
  if (keepAlive === undefined) return;
  check.knownKeys('keepAlive', keepAlive, ['idleMs', 'intervalMs', 'count', 'userTimeoutMs']);
  for (const option of ['idleMs', 'intervalMs', 'userTimeoutMs'] as const) {
    // The kernel counts whole seconds for idle and interval, milliseconds for the user timeout.
    if (keepAlive[option] !== undefined) check.duration(`keepAlive.${option}`, keepAlive[option]);
  }
  if (keepAlive.count !== undefined) check.count('keepAlive.count', keepAlive.count);
}
