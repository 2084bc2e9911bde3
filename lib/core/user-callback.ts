/** How a user's function failed: by a synchronous throw, or through the promise it returned. */
export type CallbackFailure = 'threw' | 'rejected';

/**
 * Where the failure of a user's function goes once it is caught: a log line naming the connection and
 * the place (see messages.callbackFailed), with the error for its stack.
 */
export type CallbackReport = (error: unknown, message: string) => void;

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
