/** How a user's function failed: by a synchronous throw, or through the promise it returned. */
export type CallbackFailure = 'threw' | 'rejected';

/**
 * Where the failure of a user's function goes once it is caught: a log line naming the connection and
 * the place (see messages.callbackFailed), with the error for its stack.
 */
export type CallbackReport = (error: unknown, message: string) => void;

/** A handler that fails again and again is logged at most this often. */
export const REPEATED_FAILURE_LOG_MS = 60_000;

/**
 * A report that writes at most one line per `everyMs`: a message handler failing on every delivery of a
 * redelivery loop (RabbitMQ requeues a NACKed message at once, thousands of times a second) must not
 * flood the log. The next line written says how many were left out.
 */
export function throttleReport(report: CallbackReport, everyMs = REPEATED_FAILURE_LOG_MS, now: () => number = Date.now): CallbackReport {
  let lastAt = -Infinity;
  let leftOut = 0;
  return (error, message) => {
    const at = now();
    if (at - lastAt < everyMs) {
      leftOut += 1;
      return;
    }
    const note = leftOut ? ` (${leftOut} more failure(s) of it since the last line were not logged)` : '';
    report(error, `${message}${note}`);
    lastAt = at;
    leftOut = 0;
  };
}

/** For callers outside Nest (benchmarks, scripts): the orchestrator always passes its logger's. */
export const reportToConsole: CallbackReport = (error, message) => console.error(message, error);

/**
 * Calls a user's function (a handler, a subscriber, a setter) so that nothing it does can escape into
 * the package's own control flow, or crash the process: a synchronous throw and a rejection of the
 * promise it returns both go to `onFailure`. A returned promise is never awaited, so one that never
 * settles holds nothing up. `onFailure` runs at most once, and must not throw itself.
 */
export function callUser(call: () => unknown, onFailure: (error: unknown, how: CallbackFailure) => void): void {
  let result: unknown;
  try {
    result = call();
  } catch (error) {
    onFailure(error, 'threw');
    return;
  }
  if (isThenable(result)) {
    // Promise.resolve() also turns a `then` that throws into a rejection.
    Promise.resolve(result).then(undefined, (error: unknown) => onFailure(error, 'rejected'));
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
