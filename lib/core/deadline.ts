import type { Clock } from './clock.js';

export interface DeadlineOptions {
  readonly clock: Clock;
  readonly timeoutMs: number;
  /** A timer this much later than asked means a blocked event loop: the task gets one grace period. */
  readonly lagToleranceMs: number;
  /** Aborts the task early (shutdown, forced reconnect); the promise then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /**
   * The controller whose signal the task gets; aborting it is like aborting `signal`. Given by a caller that
   * wants to abort the task itself, so that a beat costs one AbortController, not two.
   */
  readonly controller?: AbortController;
  readonly onTimeout: () => Error;
  /**
   * For a close: once the deadline passes or `signal` aborts, how long the task may still take to finish by
   * force (destroying sockets) before the promise rejects anyway. With it, the task also runs when `signal`
   * aborted before the start, so a forced close still closes. Default 0: reject at once; an aborted task
   * is not started.
   */
  readonly forceGraceMs?: number;
}

/**
 * Runs `task` with an AbortSignal that fires at the deadline, and settles no later than that, whatever
 * the task does. The deadline timer is always cleared. When the timer itself fires late because the event
 * loop was blocked, the answer may already wait unread in a socket: it gets one grace period, so a busy
 * process does not declare a healthy server dead.
 */
export function withDeadline<T>(task: (signal: AbortSignal) => Promise<T>, options: DeadlineOptions): Promise<T> {
  const { clock, timeoutMs, lagToleranceMs, forceGraceMs = 0 } = options;
  const controller = options.controller ?? new AbortController();
  const outer = options.signal ?? options.controller?.signal;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: unknown;
    /** The deadline's or the outer signal's verdict; the task may still finish within the grace. */
    let verdict: { error: unknown } | undefined;
    let running: Promise<T> | undefined;
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      clock.clearTimer(timer);
      outer?.removeEventListener('abort', onOuterAbort);
      settle();
    };
    const fail = (error: unknown) => {
      if (settled || verdict) return;
      verdict = { error };
      controller.abort(error);
      clock.clearTimer(timer);
      if (running && forceGraceMs > 0) timer = clock.setTimer(() => finish(() => reject(error)), forceGraceMs);
      else finish(() => reject(error));
    };
    const onOuterAbort = () => fail(outer?.reason);
    const arm = (delayMs: number, graceLeft: boolean) => {
      const dueAt = clock.now() + delayMs;
      timer = clock.setTimer(() => {
        const lateBy = clock.now() - dueAt;
        if (graceLeft && lateBy > lagToleranceMs) arm(lagToleranceMs, false);
        else fail(options.onTimeout());
      }, delayMs);
    };

    if (outer?.aborted) {
      if (forceGraceMs <= 0) return fail(outer.reason);
      controller.abort(outer.reason);
    } else {
      outer?.addEventListener('abort', onOuterAbort, { once: true });
      arm(timeoutMs, true);
    }
    try {
      running = task(controller.signal);
    } catch (error) {
      return finish(() => reject(verdict ? verdict.error : error));
    }
    running.then(
      (value) => finish(() => (verdict ? reject(verdict.error) : resolve(value))),
      (error: unknown) => finish(() => reject(verdict ? verdict.error : error)),
    );
    if (outer?.aborted) fail(outer.reason);
  });
}
