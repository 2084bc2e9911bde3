import { CONNECTION_LIFECYCLE } from '../connection-health.constants.js';
import type { ConnectionLifecycle } from '../core/connection-lifecycle.js';

/** @internal */
export interface LifecycleMetadata {
  readonly lifecycle: ConnectionLifecycle;
  /** Undefined: every connection. */
  readonly name?: string;
}

function lifecycleDecorator(lifecycle: ConnectionLifecycle) {
  return (name?: string): MethodDecorator =>
    (_target, _key, descriptor) => {
      const method = descriptor.value as object;
      const existing: LifecycleMetadata[] = Reflect.getMetadata(CONNECTION_LIFECYCLE, method) ?? [];
      Reflect.defineMetadata(CONNECTION_LIFECYCLE, [...existing, { lifecycle, name }], method);
    };
}

/*
 * Handlers receive the StateChangeEvent (with its snapshot). One that throws or rejects is logged and the
 * monitor goes on; an async one is not awaited, so it never delays a heartbeat. Without a name, a handler
 * hears every connection.
 */

/** The connection is up for the first time. */
export const OnConnected = lifecycleDecorator('connected');
/** A serving connection went down: heartbeats failed or the client reported the loss. */
export const OnConnectionLost = lifecycleDecorator('lost');
/** The connection is up again after a loss: messages sent meanwhile may have been missed. */
export const OnConnectionRecovered = lifecycleDecorator('recovered');
/** Reconnect attempts are spent; the failure policy runs. */
export const OnConnectionFailed = lifecycleDecorator('failed');
