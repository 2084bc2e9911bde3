import { EventEmitter } from 'node:events';
import { BehaviorSubject, type Observable } from 'rxjs';
import { abortable, onAbort } from '../../core/abortable.js';
import type { BeatReport, ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import { messages } from '../../core/messages.js';
import { describeError } from '../../core/redact.js';
import { firstEvent } from '../first-event.js';
import { loadPeer } from '../load-peer.js';
import type { KeptNatsSubscriptions } from './kept-nats-subscriptions.js';
import type { NatsConnectionLike, NatsStatusLike } from './nats-like.js';

type NatsLibrary = typeof import('nats');

/** The app's connection, watched; or the options of the package's own. */
export type NatsSource = { readonly watched: NatsConnectionLike } | { readonly connectOptions: Record<string, unknown> };

export interface NatsAdapterSettings {
  readonly target: string;
  readonly subscriptions: KeptNatsSubscriptions;
  readonly secrets: readonly string[];
}

/** A beat that missed its deadline: what tells a dead flow from a slow one at the next attempt. */
interface LateBeat {
  readonly connection: NatsConnectionLike;
  /** The bytes the connection had received when the beat went out. */
  readonly inBytes: number;
}

/** What the package follows of one connection: its status events, relayed, and the end of its watch. */
interface Watch {
  readonly connection: NatsConnectionLike;
  readonly events: EventEmitter;
  /** Between a 'disconnect' and the next 'reconnect', false; a connection is connected when it is handed over. */
  connected: boolean;
  stop(): void;
}

/**
 * A NATS server through nats.js. The beat is `rtt()`: a PING answered by a PONG, within the deadline.
 *
 * The package's own connection is made with nats.js's reconnect off, so its first loss closes it, and each
 * open() makes a new one (a closed nats.js connection never opens again) with the engine's backoff; the
 * handle gives the new one. The app's connection is watched, never closed: nats.js reconnects it, and
 * open() waits for its 'reconnect'. One that nats.js closed for good (its reconnect attempts ran out, a
 * second authorization error) stays down, with a reason that says so.
 *
 * A late beat reads the connection down; its transport is dropped at the next attempt only when not one
 * byte came in on it since the beat went out (a dead flow: a NAT that forgot it, a blackhole), which
 * nats.js alone notices after two to three pingIntervals (4 to 6 minutes by default).
 */
export class NatsAdapter implements ConnectionAdapter {
  readonly kind = 'nats';
  readonly target: string;
  readonly clientChanges$: Observable<unknown>;
  private readonly clients = new BehaviorSubject<NatsConnectionLike | undefined>(undefined);
  private readonly owned: boolean;
  private connection?: NatsConnectionLike;
  private watch?: Watch;
  private late?: LateBeat;
  /** Why the last connection was lost or failed. */
  private lastReason?: string;
  private closing = false;
  private onLoss?: (error: Error) => void;

  constructor(
    private readonly source: NatsSource,
    private readonly settings: NatsAdapterSettings,
  ) {
    this.owned = !('watched' in source);
    if ('watched' in source) this.connection = source.watched;
    this.target = settings.target;
    this.clientChanges$ = this.clients.asObservable();
  }

  knownSecrets(): readonly string[] {
    return this.settings.secrets;
  }

  currentClient(): unknown {
    return this.clients.value;
  }

  async open(signal: AbortSignal): Promise<void> {
    this.clients.next(undefined);
    const connection = this.owned ? await this.ownConnection(signal) : await this.watchedConnection(signal);
    this.settings.subscriptions.make(connection);
    await this.beat(connection, signal);
    this.clients.next(connection);
  }

  async ping(signal: AbortSignal): Promise<BeatReport> {
    const connection = this.clients.value;
    if (!connection) throw new Error(messages.natsNotConnected(this.lastReason));
    await this.beat(connection, signal);
    const impairment = this.settings.subscriptions.impairment();
    // A refused subscription is asked for again; the server's answer comes before the next beat's PONG.
    if (impairment) this.settings.subscriptions.make(connection);
    return { impairment };
  }

  /** The package's connection: drained (its subscriptions' messages handled), closed at `signal`. The app's: left open. */
  async close(signal: AbortSignal): Promise<void> {
    this.closing = true;
    const connection = this.connection;
    this.clients.next(undefined);
    this.clients.complete();
    this.watch?.stop();
    this.settings.subscriptions.close();
    if (!this.owned || !connection || connection.isClosed()) return;
    const stopForcing = onAbort(signal, () => void connection.close().catch(() => undefined));
    try {
      await abortable(
        connection.drain().catch(() => connection.close()),
        signal,
      ).catch(() => undefined);
    } finally {
      stopForcing();
    }
  }

  observeLoss(onLoss: (error: Error) => void): () => void {
    this.onLoss = onLoss;
    return () => (this.onLoss = undefined);
  }

  /** The live connection of the package's, kept when it is only slow, else a new one. */
  private async ownConnection(signal: AbortSignal): Promise<NatsConnectionLike> {
    const previous = this.connection;
    if (previous && !previous.isClosed()) {
      if (!this.flowIsDead(previous)) return previous;
      await previous.close().catch(() => undefined);
    }
    this.late = undefined;
    const { connect } = await loadPeer<NatsLibrary>('nats', 'NATS connections');
    const source = this.source as Exclude<NatsSource, { watched: NatsConnectionLike }>;
    // nats.js never reconnects behind the engine's back: its first loss closes the connection.
    const connecting = connect({ ...source.connectOptions, reconnect: false }) as unknown as Promise<NatsConnectionLike>;
    let connection: NatsConnectionLike;
    try {
      connection = await abortable(connecting, signal);
    } catch (error) {
      // One that connects after the deadline is not kept.
      void connecting.then((late) => late.close()).catch(() => undefined);
      this.lastReason = describeError(error);
      throw error;
    }
    this.connection = connection;
    this.lastReason = undefined;
    this.follow(connection);
    return connection;
  }

  /** The app's connection, once nats.js has it connected: its transport dropped first when its flow is dead. */
  private async watchedConnection(signal: AbortSignal): Promise<NatsConnectionLike> {
    const connection = this.connection as NatsConnectionLike;
    if (connection.isClosed()) throw new Error(messages.natsClosedForGood(this.lastReason));
    const watch = this.follow(connection);
    if (this.flowIsDead(connection)) {
      watch.connected = false;
      void connection.reconnect().catch(() => undefined);
    }
    if (watch.connected) return connection;
    const { event } = await firstEvent(watch.events, ['reconnect', 'closed'], signal).catch((error: unknown) => {
      throw new Error(messages.natsNotReconnectedInTime(this.lastReason), { cause: error });
    });
    if (event === 'closed') throw new Error(messages.natsClosedForGood(this.lastReason));
    return connection;
  }

  /** An rtt() within the deadline, given up as soon as the connection closes (nats.js then never settles it). */
  private async beat(connection: NatsConnectionLike, signal: AbortSignal): Promise<void> {
    const late: LateBeat = { connection, inBytes: connection.stats().inBytes };
    const closed = connection.closed().then(() => {
      throw new Error(messages.natsClosed(this.lastReason));
    });
    closed.catch(() => undefined);
    try {
      await abortable(Promise.race([connection.rtt(), closed]), signal);
      this.late = undefined;
    } catch (error) {
      if (signal.aborted) this.late = late;
      throw error;
    }
  }

  /** Whether the connection of a late beat is the same, open, and received not one byte since: a dead flow. */
  private flowIsDead(connection: NatsConnectionLike): boolean {
    const late = this.late;
    this.late = undefined;
    return late?.connection === connection && !connection.isClosed() && connection.stats().inBytes === late.inBytes;
  }

  /**
   * Relays the connection's status events, and reports its losses, once per connection. nats.js 2.x never
   * ends a status iterator, so the watch stops it itself when the connection closes.
   */
  private follow(connection: NatsConnectionLike): Watch {
    if (this.watch?.connection === connection) return this.watch;
    this.watch?.stop();
    const iterator = connection.status()[Symbol.asyncIterator]();
    let stopped = false;
    const watch: Watch = {
      connection,
      events: new EventEmitter(),
      connected: true,
      stop: () => {
        stopped = true;
        void iterator.return?.();
      },
    };
    this.watch = watch;
    const lost = (reason: string | undefined) => {
      watch.connected = false;
      if (reason) this.lastReason = reason;
      if (this.clients.value !== connection) return;
      this.clients.next(undefined);
      this.onLoss?.(new Error(messages.natsClosed(this.lastReason)));
    };
    void (async () => {
      for (;;) {
        const next = await iterator.next().catch(() => ({ done: true as const, value: undefined }));
        if (next.done || stopped) return;
        const status = next.value as NatsStatusLike;
        if (status.type === 'error') this.lastReason = statusReason(status);
        if (status.type === 'disconnect' || status.type === 'staleConnection') lost(this.lastReason ?? statusReason(status));
        if (status.type === 'reconnect') {
          watch.connected = true;
          this.lastReason = undefined;
        }
        watch.events.emit(status.type, status);
      }
    })();
    void connection.closed().then((error) => {
      if (stopped) return;
      watch.stop();
      if (!this.closing) lost(error ? describeError(error) : this.lastReason);
      watch.events.emit('closed');
    });
    return watch;
  }
}

/** What a status event says of why: the server's error code, or where it happened. */
function statusReason(status: NatsStatusLike): string | undefined {
  return status.type === 'staleConnection' ? messages.natsStale() : status.data === undefined ? status.type : `${status.type} ${String(status.data)}`;
}
