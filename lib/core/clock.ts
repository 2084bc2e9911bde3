/** An opaque timer handle: whatever the clock's setTimer returned. */
export type TimerHandle = unknown;

/**
 * Time as the engine sees it. The engine never touches global timers directly, so tests run on fake time
 * and a Nest app can register the heartbeat timers where its other jobs live (SchedulerRegistry).
 */
export interface Clock {
  /** Milliseconds since the epoch, with sub-millisecond precision where the clock has it. */
  now(): number;
  /**
   * Runs `callback` once after `delayMs`. `name` is given for the one schedule timer of a connection
   * (its next heartbeat or reconnect attempt) so that a registry can list it; deadlines are anonymous.
   */
  setTimer(callback: () => void, delayMs: number, name?: string): TimerHandle;
  clearTimer(handle: TimerHandle, name?: string): void;
}

/** Node's timers and a monotonic clock anchored at the epoch (wall-clock jumps do not skew RTTs). */
export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimer: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
