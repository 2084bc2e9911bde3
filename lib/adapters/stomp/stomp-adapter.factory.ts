import { randomBytes } from 'node:crypto';
import type { ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import type { MonitorOptions } from '../../core/monitor-options.js';
import type { OptionChecker } from '../../core/option-checker.js';
import type { CallbackReport } from '../../core/user-callback.js';
import { checkStompOptions, type StompAdapterOptions } from './stomp-options.js';
import { StompAdapter, type StompAdapterSettings } from './stomp.adapter.js';

/** stompjs' own default period, and a sensible ceiling: a longer one lets a broker hold a dead session longer. */
const MAX_DEFAULT_STOMP_HEARTBEAT_MS = 10_000;

/**
 * Checks the options of a STOMP connection and that its client libraries are installed, and builds its
 * adapter; `report` logs a failing onMessage.
 */
export function createStompAdapter(
  name: string,
  definition: StompAdapterOptions,
  options: MonitorOptions,
  check: OptionChecker,
  report: CallbackReport,
): ConnectionAdapter {
  const settings = resolveStompSettings(name, definition, options, check);
  check.needsPeer('@stomp/stompjs', 'STOMP connections');
  if (settings.endpoint.transport === 'websocket') check.needsPeer('ws', 'STOMP over WebSocket');
  return new StompAdapter(settings, { connection: name, report });
}

/** Checks the options and fills in every default. */
export function resolveStompSettings(name: string, definition: StompAdapterOptions, options: MonitorOptions, check: OptionChecker): StompAdapterSettings {
  const endpoint = checkStompOptions(check, definition);
  const period = Math.min(options.heartbeat.intervalMs, MAX_DEFAULT_STOMP_HEARTBEAT_MS);
  const connectHeaders: Record<string, string> = { ...definition.connectHeaders };
  if (endpoint.login !== undefined) connectHeaders.login = endpoint.login;
  if (endpoint.passcode !== undefined) connectHeaders.passcode = endpoint.passcode;
  if (definition.vhost !== undefined) connectHeaders.host = definition.vhost;
  // Unique per process, so replicas of one app never receive each other's probes.
  const probeDestination =
    definition.probe?.destination ?? `/topic/connection-health.${name.replace(/[^A-Za-z0-9_-]/g, '_')}.${randomBytes(4).toString('hex')}`;
  return {
    endpoint,
    connectHeaders,
    heartbeat: {
      outgoingMs: definition.stompHeartbeat?.outgoingMs ?? period,
      incomingMs: definition.stompHeartbeat?.incomingMs ?? period,
      toleranceMultiplier: definition.stompHeartbeat?.toleranceMultiplier ?? 2,
    },
    probeDestination,
    subscriptions: definition.subscriptions ?? [],
    keepAlive: definition.keepAlive ?? {},
  };
}
