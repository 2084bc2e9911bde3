/**
 * The life of one monitored connection.
 *
 * idle -> connecting -> up <-> degraded -> down <-> reconnecting -> up
 *                                          down -> failed (max attempts spent; onFailure fires once)
 *                                                    failed -> up (the 'retry' policy goes on trying, quietly)
 * any state -> closing -> closed (on purpose: a closed connection never reconnects)
 */
export type ConnectionState =
  | 'idle'
  | 'connecting'
  | 'up'
  | 'degraded'
  | 'down'
  | 'reconnecting'
  | 'failed'
  | 'closing'
  | 'closed';

/** States in which the connection is believed usable and heartbeats run. */
export function isServing(state: ConnectionState): boolean {
  return state === 'up' || state === 'degraded';
}

/** States after which nothing but close() may happen. */
export function isClosing(state: ConnectionState): boolean {
  return state === 'closing' || state === 'closed';
}
