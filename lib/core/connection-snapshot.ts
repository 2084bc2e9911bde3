import type { ConnectionState } from './connection-state.js';

/** What is known of one connection at one moment. Immutable: every change makes a new one. */
export interface ConnectionSnapshot {
  readonly name: string;
  readonly kind: string;
  /** Where it points, without credentials. */
  readonly target?: string;
  readonly state: ConnectionState;
  /** When the current state began (epoch ms). */
  readonly since: number;
  /** Why the current state began, with secrets removed. */
  readonly reason: string;
  /** When the last heartbeat succeeded (epoch ms). */
  readonly lastBeatAt?: number;
  /** Round trip of the last successful heartbeat. */
  readonly lastRttMs?: number;
  readonly consecutiveFailures: number;
  /** Reconnect attempts since the connection was last up. */
  readonly reconnectAttempts: number;
  /** When the next reconnect attempt is due (epoch ms), while down. */
  readonly nextAttemptAt?: number;
  /** When the connection was last up (epoch ms); absent until it connected once. */
  readonly connectedAt?: number;
  /** What the adapter measured with the last answered beat (e.g. a pool's waiting clients), when it measures anything. */
  readonly figures?: Readonly<Record<string, number>>;
  /** The last error, with secrets removed. */
  readonly lastError?: string;
  /** Beyond this age of its last sign of life, a serving connection reads as down. */
  readonly staleAfterMs: number;
}

export type HealthStatus = 'up' | 'degraded' | 'down';

export interface HealthReading {
  readonly status: HealthStatus;
  /** True when a serving snapshot is older than its staleness bound. */
  readonly stale: boolean;
}

/**
 * The health of a connection as a probe should report it, from its snapshot alone: no I/O. A serving
 * connection whose last sign of life is too old reads down, because a stalled monitor proves nothing.
 */
export function readHealth(snapshot: ConnectionSnapshot, now: number): HealthReading {
  if (snapshot.state !== 'up' && snapshot.state !== 'degraded') return { status: 'down', stale: false };
  const lastSign = Math.max(snapshot.lastBeatAt ?? 0, snapshot.since);
  if (now - lastSign > snapshot.staleAfterMs) return { status: 'down', stale: true };
  return { status: snapshot.state, stale: false };
}
