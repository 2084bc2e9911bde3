import type { StateChangeEvent } from './connection-event.js';

/** The moments of a connection's life an app reacts to (an Elixir health checker's on_connect, on_disconnect, on_failure). */
export type ConnectionLifecycle = 'connected' | 'lost' | 'recovered' | 'failed';

/**
 * The moment a transition marks, if any. `wasUpBefore` tells a first connection (even after failed
 * attempts) from a recovery, after which the app may have missed messages.
 */
export function lifecycleOf(event: StateChangeEvent, wasUpBefore: boolean): ConnectionLifecycle | undefined {
  if (event.to === 'up' && event.from !== 'degraded') return wasUpBefore ? 'recovered' : 'connected';
  if (event.to === 'down' && (event.from === 'up' || event.from === 'degraded')) return 'lost';
  if (event.to === 'failed') return 'failed';
  return undefined;
}
