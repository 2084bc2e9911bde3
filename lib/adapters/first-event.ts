/** An EventEmitter, as far as waiting for one of its events goes. */
export interface EmitterLike {
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
}

/**
 * Resolves with the name of the first of `events` that `emitter` emits, and what it passed; rejects with
 * `signal`'s reason when it aborts first. Leaves no listener behind, since a client of the app's lives on.
 */
export function firstEvent(emitter: EmitterLike, events: readonly string[], signal: AbortSignal): Promise<{ readonly event: string; readonly args: unknown[] }> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const listeners = events.map((event) => [event, (...args: unknown[]) => settle(() => resolve({ event, args }))] as const);
    const aborted = () => settle(() => reject(signal.reason));
    function settle(outcome: () => void): void {
      for (const [event, listener] of listeners) emitter.removeListener(event, listener);
      signal.removeEventListener('abort', aborted);
      outcome();
    }
    for (const [event, listener] of listeners) emitter.on(event, listener);
    signal.addEventListener('abort', aborted, { once: true });
  });
}
