import type { ConnectionSnapshot } from './connection-snapshot.js';

/** What happens once the reconnect attempts are spent. */
export type FailurePolicy =
  /** Stay `failed` (readiness down) but keep trying every `maxDelayMs`, so a late recovery still heals. */
  | 'retry'
  /** Stop trying; only forceReconnect() revives the connection. */
  | 'stop'
  /** Log at fatal level and exit the process with `exitCode`, so Docker or Kubernetes replaces it. */
  | 'exit';

export interface HeartbeatOptions {
  /**
   * Time between heartbeats. Default 30 000. Jitter only ever shortens it, so a silent death is noticed
   * within `intervalMs + failureThreshold * timeoutMs`. Keep it below the idle timeout of every load
   * balancer or NAT on the path (AWS NLB 350 s, Azure 240 s, GCP 600 s).
   */
  intervalMs: number;
  /** Deadline of one heartbeat. Default 5 000; must be below `intervalMs`. */
  timeoutMs: number;
  /** Deadline of one connect attempt. Default 10 000. */
  connectTimeoutMs: number;
  /** Fraction of `intervalMs` taken off at random, so many instances do not beat in step. Default 0.1. */
  jitter: number;
  /**
   * Consecutive failed heartbeats before the connection is declared down. Below it the connection reads
   * degraded and the next beat goes out at once (a confirmation, not a wait of intervalMs), so one lost
   * beat on a lossy path does not drop the connection. Default 1.
   */
  failureThreshold: number;
  /**
   * A deadline timer that fires this much later than asked means the event loop was blocked, and the answer
   * may sit unread in a socket: the beat then gets one grace period of this length. Default 1 000.
   */
  lagToleranceMs: number;
  /**
   * A snapshot whose last heartbeat is older than this reads as down (the monitor itself stalled).
   * Default 2 * (intervalMs + failureThreshold * timeoutMs).
   */
  staleAfterMs: number;
}

export interface SuspicionOptions {
  /** Adaptive suspicion: a beat slower than its history says reads degraded before the deadline. Default true. */
  enabled: boolean;
  /** phi at which an unanswered beat is suspect: 8 means a 1 in 10^8 chance that a healthy answer takes this long. Default 8. */
  phiThreshold: number;
  /** Floor of the standard deviation of round trips, so a very steady history does not suspect every hiccup. Default 50. */
  minStdDevMs: number;
  /** Round trips the mean and deviation follow: exponentially weighted over about this many. Default 50. */
  windowSize: number;
  /** Round trips needed before suspicion starts. Default 5. */
  minSamples: number;
}

export interface ReconnectOptions {
  /** Delay before the first reconnect attempt. Default 1 000. */
  initialDelayMs: number;
  /** Cap of the exponential delay. Default 30 000. */
  maxDelayMs: number;
  /** Growth of the delay per attempt. Default 2. */
  factor: number;
  /** Fraction of each delay taken off at random (0 = none, 1 = full jitter). Default 0.5. */
  jitter: number;
  /** Attempts after a loss before the connection is `failed`; `Infinity` never gives up. Default 10. */
  maxAttempts: number;
}

export interface FailureOptions {
  /** Default 'retry'. */
  policy: FailurePolicy;
  /** Process exit code of the 'exit' policy. Default 1. */
  exitCode: number;
  /** Called once each time the connection becomes `failed`; never awaited, and a throw or rejection is logged. */
  onFailure?: (snapshot: ConnectionSnapshot) => void | Promise<void>;
}

/** Every option of one monitor, defaults filled in. */
export interface MonitorOptions {
  readonly heartbeat: Readonly<HeartbeatOptions>;
  readonly suspicion: Readonly<SuspicionOptions>;
  readonly reconnect: Readonly<ReconnectOptions>;
  readonly failure: Readonly<FailureOptions>;
}

/** What a user may give: any subset, per connection or as module-wide defaults. */
export interface MonitorOptionsInput {
  heartbeat?: Partial<HeartbeatOptions>;
  suspicion?: Partial<SuspicionOptions>;
  reconnect?: Partial<ReconnectOptions>;
  failure?: Partial<FailureOptions>;
}

export const DEFAULT_HEARTBEAT: Readonly<Omit<HeartbeatOptions, 'staleAfterMs'>> = {
  intervalMs: 30_000,
  timeoutMs: 5_000,
  connectTimeoutMs: 10_000,
  jitter: 0.1,
  failureThreshold: 1,
  lagToleranceMs: 1_000,
};

export const DEFAULT_SUSPICION: Readonly<SuspicionOptions> = {
  enabled: true,
  phiThreshold: 8,
  minStdDevMs: 50,
  windowSize: 50,
  minSamples: 5,
};

export const DEFAULT_RECONNECT: Readonly<ReconnectOptions> = {
  initialDelayMs: 1_000,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 0.5,
  maxAttempts: 10,
};

export const DEFAULT_FAILURE: Readonly<Omit<FailureOptions, 'onFailure'>> = {
  policy: 'retry',
  exitCode: 1,
};
