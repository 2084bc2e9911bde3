import type { ConnectionChange } from './connection-change.js';

export interface PublishContext {
  /**
   * Aborts when the app shuts down and the flush bound is spent: stop sending, close what is open. A
   * publisher that ignores it is no longer waited for anyway.
   */
  readonly signal: AbortSignal;
}

/**
 * Told of every state transition of every connection (the `publishers` option). Called fire-and-forget
 * from the connection's event stream: what it returns is never awaited by a monitor, and a throw, a
 * rejection or a promise that never settles is logged (or, at shutdown, cut at the flush bound) and
 * stalls nothing.
 */
export interface ConnectionHealthPublisher {
  /** Names the publisher in log lines. Default: its class name. */
  readonly name?: string;
  publish(change: ConnectionChange, context: PublishContext): Promise<void> | void;
  /**
   * At shutdown, once every connection is closed: deliver what is held back (queued, throttled) now. The
   * shutdown waits for it, and for publish() calls still at work, up to the flush bound. Optional.
   */
  flush?(context: PublishContext): Promise<void> | void;
}
