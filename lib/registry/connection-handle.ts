import { EMPTY, type Observable } from 'rxjs';
import type { ConnectionAdapter } from '../core/connection-adapter.interface.js';
import type { ConnectionEvent } from '../core/connection-event.js';
import type { ConnectionMonitor } from '../core/connection-monitor.js';
import type { ConnectionSnapshot } from '../core/connection-snapshot.js';
import type { ConnectionState } from '../core/connection-state.js';

/** What an app may see and do with one monitored connection. */
export class ConnectionHandle {
  constructor(
    private readonly monitor: ConnectionMonitor,
    private readonly adapter: ConnectionAdapter,
    /** A required connection decides readiness. */
    readonly required: boolean,
  ) {}

  get name(): string {
    return this.monitor.name;
  }

  get state(): ConnectionState {
    return this.monitor.state;
  }

  /** The latest immutable snapshot: cheap, no I/O. */
  snapshot(): ConnectionSnapshot {
    return this.monitor.snapshot();
  }

  /** Every transition and heartbeat of this connection; completes when it is closed. */
  get events$(): Observable<ConnectionEvent> {
    return this.monitor.events$;
  }

  /**
   * The live client of a connection whose adapter creates one per session (IMAP, STOMP), or undefined
   * while there is none. Ask again after a reconnect: the old client is gone.
   */
  client<T = unknown>(): T | undefined {
    return this.adapter.currentClient?.() as T | undefined;
  }

  /** Each new live client, and undefined when a session is lost; empty for kinds without a client. */
  clientChanges$<T = unknown>(): Observable<T | undefined> {
    return (this.adapter.clientChanges$ ?? EMPTY) as Observable<T | undefined>;
  }

  /** Drops the current session and connects again at once. */
  forceReconnect(reason?: string): void {
    this.monitor.forceReconnect(reason);
  }
}
