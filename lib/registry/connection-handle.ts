import { defer, distinctUntilChanged, EMPTY, filter, map, merge, type Observable } from 'rxjs';
import type { ConnectionAdapter } from '../core/connection-adapter.interface.js';
import type { ConnectionEvent } from '../core/connection-event.js';
import type { ConnectionMonitor } from '../core/connection-monitor.js';
import type { ConnectionSnapshot } from '../core/connection-snapshot.js';
import { isClosing, isServing, type ConnectionState } from '../core/connection-state.js';
import { UnknownConnectionError } from '../core/errors/unknown-connection.error.js';
import type { CallbackReport } from '../core/user-callback.js';
import { GuardedObservable } from './guarded-observable.js';

interface Binding {
  readonly monitor: ConnectionMonitor;
  readonly adapter: ConnectionAdapter;
  readonly required: boolean;
}

/**
 * What an app may see and do with one monitored connection. A handle can be injected by name
 * (@InjectConnection) before the connection is registered, since decorated connections are only found
 * once every provider exists; it is bound at module init and usable from onApplicationBootstrap on.
 */
export class ConnectionHandle {
  /** The adapter holds the credentials: private, so that no inspection of a handle shows them. */
  #binding?: Binding;

  constructor(
    readonly name: string,
    private readonly knownNames: () => string[],
    /** @internal Where a failing callback of the app is logged: subscribers, keepStompSubscription's handler. */
    readonly reportCallbackFailure: CallbackReport,
  ) {}

  /** @internal */
  bind(monitor: ConnectionMonitor, adapter: ConnectionAdapter, required: boolean): void {
    this.#binding = { monitor, adapter, required };
  }

  get isBound(): boolean {
    return this.#binding !== undefined;
  }

  /** A required connection decides readiness. */
  get required(): boolean {
    return this.bound().required;
  }

  get state(): ConnectionState {
    return this.bound().monitor.state;
  }

  /** The latest immutable snapshot: cheap, no I/O. */
  snapshot(): ConnectionSnapshot {
    return this.bound().monitor.snapshot();
  }

  /**
   * Every transition and heartbeat of this connection; completes when it is closed. A subscriber that
   * throws or rejects is logged and the others go on, also through `pipe()`.
   */
  get events$(): Observable<ConnectionEvent> {
    return this.guarded('events$', defer(() => this.bound().monitor.events$));
  }

  /**
   * The live client of a connection whose adapter creates one per session (IMAP, STOMP), or undefined
   * while there is none: also from the moment the connection is declared down, before the adapter tears
   * the session down. Ask again after a reconnect: the old client is gone.
   */
  client<T = unknown>(): T | undefined {
    const { monitor, adapter } = this.bound();
    return isServing(monitor.state) ? (adapter.currentClient?.() as T | undefined) : undefined;
  }

  /**
   * Each new live client, and undefined when a session is lost (as soon as the connection is declared
   * down); nothing for kinds without a client. Guarded like `events$`.
   */
  clientChanges$<T = unknown>(): Observable<T | undefined> {
    return this.guarded('clientChanges$()', defer(() => {
      const { monitor, adapter } = this.bound();
      if (!adapter.clientChanges$) return EMPTY;
      const lost = monitor.events$.pipe(
        filter((event) => event.type === 'state' && isServing(event.from) && !isServing(event.to)),
        map(() => undefined),
      );
      // A client the adapter still holds after the loss was declared (it tears down at the next attempt)
      // is not live: replayed or emitted then, it reads undefined.
      const live = (adapter.clientChanges$ as Observable<T | undefined>).pipe(
        map((client) => (monitor.state === 'down' || monitor.state === 'failed' || isClosing(monitor.state) ? undefined : client)),
      );
      return merge(live, lost).pipe(distinctUntilChanged());
    }));
  }

  /** Drops the current session and connects again at once. */
  forceReconnect(reason?: string): void {
    this.bound().monitor.forceReconnect(reason);
  }

  private guarded<T>(stream: string, source: Observable<T>): Observable<T> {
    return GuardedObservable.of(source, { connection: this.name, stream, report: this.reportCallbackFailure });
  }

  private bound(): Binding {
    if (!this.#binding) throw new UnknownConnectionError(this.name, this.knownNames());
    return this.#binding;
  }
}
