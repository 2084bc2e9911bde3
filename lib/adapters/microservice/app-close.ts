import type { ClientProxyLike } from './client-proxy-like.js';

/** Whether the app has called the proxy's close() since the package last saw it connected anew. */
export interface AppClose {
  closed(): boolean;
  /** Someone connected the proxy again after its close (a new connection under it): the close is over. */
  reopened(): void;
  /** Gives the proxy back its own close(). */
  stop(): void;
}

/**
 * Records the app's calls of the proxy's close(). Nothing else tells them apart from a loss: after a loss Nest
 * drops the connection just as close() does (a Redis pair, a NATS connection nats.js gave up on, an RMQ manager
 * whose first connect failed), ioredis resets its manual-close flag before it says 'close', and a nats.js
 * connection without reconnect closes after a server's FIN with no error, as after close(). So the package
 * shadows close() with an own property that notes the call and runs the proxy's close() as it is then (its
 * class's, or a spy put on the class later), with the same `this` and arguments and the same result. stop()
 * removes it, unless the app replaced it meanwhile. A proxy that takes no new property (frozen), or whose
 * close is an accessor of its own, is not recorded: its close() reads as a loss.
 */
export function recordAppClose(proxy: ClientProxyLike): AppClose {
  let closed = false;
  const own = Object.getOwnPropertyDescriptor(proxy, 'close');
  const classClose = (): ClientProxyLike['close'] => (Object.getPrototypeOf(proxy) as ClientProxyLike).close;
  const recorded = function (this: unknown, ...args: unknown[]): unknown {
    closed = true;
    const close = (own ? own.value : classClose()) as (...args: unknown[]) => unknown;
    return close.apply(this, args);
  };
  // An accessor of the app's own stays untouched (not recorded either).
  const installed = (own === undefined || 'value' in own) && Reflect.defineProperty(proxy, 'close', { value: recorded, writable: true, configurable: true, enumerable: false });
  return {
    closed: () => closed,
    reopened: () => (closed = false),
    stop: () => {
      if (!installed || (proxy as { close: unknown }).close !== recorded) return;
      if (own) Reflect.defineProperty(proxy, 'close', own);
      else Reflect.deleteProperty(proxy, 'close');
    },
  };
}
