import type { ConnectionState } from '../core/connection-state.js';

/**
 * The metric set both exporters share (prom-client through `metrics`, OpenTelemetry through `openTelemetry`):
 * one list of states, buckets and help texts, so that the fleet rules and the dashboard read the same series
 * from either.
 */
export const STATES: readonly ConnectionState[] = ['idle', 'connecting', 'up', 'degraded', 'down', 'reconnecting', 'failed', 'closing', 'closed'];
/** From a loopback database (~1 ms) to a slow far IMAP server (seconds). */
export const RTT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const HELP = {
  state: 'Current state of the connection: 1 for the state it is in, 0 for the others.',
  up: 'Whether the connection is serving (up or degraded): 1 or 0.',
  rtt: 'Round trip of successful heartbeats.',
  failures: 'Heartbeats that failed or missed their deadline.',
  attempts: 'Reconnect attempts started.',
  figure: 'What the adapter measured with the last answered heartbeat, by figure (e.g. poolWaiting: queries waiting for a pooled connection).',
  lastBeat: 'Time of the last successful heartbeat, in seconds since the epoch.',
} as const;
