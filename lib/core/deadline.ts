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
}

/**
 * Runs `task` with an AbortSignal that fires at the deadline, and settles no later than that, whatever
 * the task does. The deadline timer is always cleared. When the timer itself fires late because the event
 * loop was blocked, the answer may already wait unread in a socket: it gets one grace period, so a busy
 * process does not declare a healthy server dead.
 */
export function withDeadline<T>(task: (signal: AbortSignal) => Promise<T>, options: DeadlineOptions): Promise<T> {
  const { clock, timeoutMs, lagToleranceMs } = options;
  const controller = options.controller ?? new AbortController();
  const outer = options.signal ?? options.controller?.signal;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: unknown;
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      clock.clearTimer(timer);
      outer?.removeEventListener('abort', onOuterAbort);
      settle();
    };
    const fail = (error: unknown) => {
      controller.abort(error);
      finish(() => reject(error));
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

    if (outer?.aborted) return fail(outer.reason);
    outer?.addEventListener('abort', onOuterAbort, { once: true });
    arm(timeoutMs, true);
    let running: Promise<T>;
    try {
      running = task(controller.signal);
    } catch (error) {
      return fail(error);
    }
    running.then(
      (value) => finish(() => resolve(value)),
      (error: unknown) => finish(() => reject(error)),
    );
  });
}
