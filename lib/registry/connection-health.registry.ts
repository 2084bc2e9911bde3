import { Injectable } from '@nestjs/common';
import { type Observable, ReplaySubject } from 'rxjs';
import type { ConnectionAdapter } from '../core/connection-adapter.interface.js';
import type { ConnectionMonitor } from '../core/connection-monitor.js';
import { UnknownConnectionError } from '../core/errors/unknown-connection.error.js';
import { textOf } from '../core/redact.js';
import type { CallbackReport } from '../core/user-callback.js';
import { ConnectionHealthLogger } from '../logging/connection-health.logger.js';
import { ConnectionHandle } from './connection-handle.js';

/** Monitored connections by name. */
@Injectable()
export class ConnectionHealthRegistry {
  private readonly handles = new Map<string, ConnectionHandle>();
  private readonly bound$ = new ReplaySubject<ConnectionHandle>();

  /**
   * @internal Each handle as it is bound, at module init, before its monitor starts (at bootstrap), and those
   * bound already to a late subscriber: what a watcher of every connection subscribes to so that it sees each
   * one's first transitions, which events$ does not replay.
   */
  readonly registered$: Observable<ConnectionHandle> = this.bound$.asObservable();

  constructor(private readonly logger: ConnectionHealthLogger) {}

  /**
   * @internal Logs a user's function that threw or rejected (a handler, a subscriber, a STOMP onMessage),
   * at error level with its stack; the message names the connection and the place.
   */
  readonly reportCallbackFailure: CallbackReport = (error, message) =>
    this.logger.error(message, error instanceof Error ? (error.stack ?? error.message) : textOf(error));

  /** @internal Binds a connection's monitor to its (perhaps already injected) handle; names are checked unique before. */
  register(monitor: ConnectionMonitor, adapter: ConnectionAdapter, required: boolean): void {
    const handle = this.handleFor(monitor.name);
    handle.bind(monitor, adapter, required);
    this.bound$.next(handle);
  }

  /** @internal The handle of `name`, bound or not yet: what @InjectConnection receives. */
  handleFor(name: string): ConnectionHandle {
    let handle = this.handles.get(name);
    if (!handle) {
      handle = new ConnectionHandle(name, () => this.names(), this.reportCallbackFailure);
      this.handles.set(name, handle);
    }
    return handle;
  }

  /** The handle of a monitored connection; throws UnknownConnectionError, listing the known names, for any other. */
  get(name: string): ConnectionHandle {
    const handle = this.handles.get(name);
    if (!handle?.isBound) throw new UnknownConnectionError(name, this.names());
    return handle;
  }

  has(name: string): boolean {
    return this.handles.get(name)?.isBound ?? false;
  }

  /** Names of the monitored connections. */
  names(): string[] {
    return this.all().map((handle) => handle.name);
  }

  all(): ConnectionHandle[] {
    return [...this.handles.values()].filter((handle) => handle.isBound);
  }

  /** Names asked for (e.g. by @InjectConnection) that no connection registered. */
  unboundNames(): string[] {
    return [...this.handles.values()].filter((handle) => !handle.isBound).map((handle) => handle.name);
  }
}
