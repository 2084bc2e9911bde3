import type { ClientProxyLike } from './client-proxy-like.js';

/** Whether the app has called the proxy's close() since the package last saw it connected anew. */
export interface AppClose {
  closed(): boolean;
  /** Someone connected the proxy again after its close (a new connection under it): the close is over. */
  reopened(): void;
  /** Done with it: the last one done gives the proxy back its class's close(). */
  stop(): void;
}

/** The one recording close() on a proxy, and who hears of each call (every connection watching that proxy). */
interface Recording {
  readonly recorded: (...args: unknown[]) => unknown;
  readonly listeners: Set<() => void>;
}

const recordings = new WeakMap<object, Recording>();

/**
 * Records the app's calls of the proxy's close(). Nothing else tells them apart from a loss: after a loss Nest
 * drops the connection just as close() does (a Redis pair, a NATS connection nats.js gave up on, an RMQ manager
 * whose first connect failed), ioredis resets its manual-close flag before it says 'close', and a nats.js
 * connection without reconnect closes after a server's FIN with no error, as after close(). So the proxy gets an
 * own, non-enumerable `close` that notes the call and runs its class's close() as it is then (a spy put on the
 * class later sees it), with the same `this`, arguments and result: one per proxy, however many connections
 * watch it, taken off when the last of them stops unless the app replaced it meanwhile. A `close` the proxy owns
 * already (a test's spy or mock, an accessor) is the app's and stays as it is, and a proxy that takes no new
 * property (frozen) is left too: their close() is not recorded and reads as a loss.
 */
export function recordAppClose(proxy: ClientProxyLike): AppClose {
  let closed = false;
  const listener = () => (closed = true);
  const recording = recordings.get(proxy) ?? install(proxy);
  recording?.listeners.add(listener);
  return {
    closed: () => closed,
    reopened: () => (closed = false),
    stop: () => {
      if (!recording?.listeners.delete(listener) || recording.listeners.size > 0) return;
      recordings.delete(proxy);
      if ((proxy as { close: unknown }).close === recording.recorded) Reflect.deleteProperty(proxy, 'close');
    },
  };
}

function install(proxy: ClientProxyLike): Recording | undefined {
  if (Object.prototype.hasOwnProperty.call(proxy, 'close')) return undefined;
  const listeners = new Set<() => void>();
  const recorded = function (this: unknown, ...args: unknown[]): unknown {
    for (const listener of listeners) listener();
    return (Object.getPrototypeOf(proxy) as ClientProxyLike).close.apply(this, args as []);
  };
  if (!Reflect.defineProperty(proxy, 'close', { value: recorded, writable: true, configurable: true, enumerable: false })) return undefined;
  const recording = { recorded, listeners };
  recordings.set(proxy, recording);
  return recording;
}
