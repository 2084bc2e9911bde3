import { EventEmitter } from 'node:events';
import { BehaviorSubject, type Observable } from 'rxjs';
import { abortable, onAbort } from '../../core/abortable.js';
import type { BeatReport, ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import { messages } from '../../core/messages.js';
import { describeError } from '../../core/redact.js';
import { firstEvent } from '../first-event.js';
import { NatsDials } from './nats-dials.js';
import { libraryOf, natsConnect } from './nats-library.js';
import { serverAnswersAnew } from './nats-side-probe.js';
import type { KeptNatsSubscriptions } from './kept-nats-subscriptions.js';
import type { NatsConnectionLike, NatsStatusLike } from './nats-like.js';

/** The app's connection, watched; or the options of the package's own. */
export type NatsSource = { readonly watched: NatsConnectionLike } | { readonly connectOptions: Record<string, unknown> };

export interface NatsAdapterSettings {
  readonly target: string;
  readonly subscriptions: KeptNatsSubscriptions;
  readonly secrets: readonly string[];
}

/** A beat that missed its deadline: its connection's flow is judged at the next attempt. */
interface LateBeat {
  readonly connection: NatsConnectionLike;
  /** Messages the connection had received when the beat went out. */
  readonly inMsgs: number;
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
 * A late beat reads the connection down; its transport is dropped at the next attempt only on evidence that
 * its flow died (see flowIsDead), which nats.js alone notices after two to three pingIntervals (4 to 6
 * minutes by default). A slow flow and a stalled server keep the connection.
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

  /**
   * The package's connection: drained (the messages already sent to its subscriptions handled), closed at
   * `signal`. The app's: left open, the package's subscriptions on it drained the same way.
   */
  async close(signal: AbortSignal): Promise<void> {
    this.closing = true;
    const connection = this.connection;
    const up = this.clients.value !== undefined;
    this.clients.next(undefined);
    this.clients.complete();
    this.watch?.stop();
    // Draining waits for the server's answer: on a connection down (a stalled server) it would only wait out the deadline.
    if (!this.owned) return up ? this.settings.subscriptions.drain(signal) : this.settings.subscriptions.close();
    if (!connection || connection.isClosed()) return;
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
      if (!(await this.flowIsDead(previous, signal))) return previous;
      await previous.close().catch(() => undefined);
    }
    this.late = undefined;
    const connect = await natsConnect();
    const source = this.source as Exclude<NatsSource, { watched: NatsConnectionLike }>;
    // nats.js never reconnects behind the engine's back: its first loss closes the connection.
    const options: Record<string, unknown> = { ...source.connectOptions, reconnect: false, ...outsideDials(source.connectOptions.authenticator) };
    const { connecting, dials } = NatsDials.follow(() => connect(options));
    let connection: NatsConnectionLike;
    try {
      connection = await abortable(connecting, signal);
    } catch (error) {
      // A handshake past the deadline is not kept, nor its socket.
      dials.destroy();
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
    // A connection with nats.js's reconnect off would close for good on reconnect(): it is only read down.
    const redials = (connection as { options?: { reconnect?: unknown } }).options?.reconnect !== false;
    if (watch.connected && redials && (await this.flowIsDead(connection, signal))) {
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
    const late: LateBeat = { connection, inMsgs: connection.stats().inMsgs };
    try {
      await abortable(this.roundTrip(connection), signal);
      this.late = undefined;
    } catch (error) {
      if (signal.aborted) this.late = late;
      throw error;
    }
  }

  /** A PING answered by its PONG, given up when the connection closes (nats.js then never settles the rtt). */
  private roundTrip(connection: NatsConnectionLike): Promise<unknown> {
    const closed = connection.closed().then(() => {
      throw new Error(messages.natsClosed(this.lastReason));
    });
    closed.catch(() => undefined);
    return Promise.race([connection.rtt(), closed]);
  }

  /**
   * After a late beat, judges the connection's flow at the next attempt. It lives, however slow or busy, and
   * is kept, when a message came in on it since the beat (a PONG waits behind the app's messages), or when a
   * PING sent now is answered (nats.js pairs each PONG with the oldest PING unanswered, so only once the flow
   * has answered every PING before it). It died (a NAT forgot it) or lost bytes when, meanwhile, the server it
   * is on answers a new connection: its transport goes. Neither before the deadline (a stalled server):
   * nothing is known, and the next attempt judges again.
   */
  private async flowIsDead(connection: NatsConnectionLike, signal: AbortSignal): Promise<boolean> {
    const late = this.late;
    this.late = undefined;
    if (late?.connection !== connection || connection.isClosed()) return false;
    const delivers = () => connection.stats().inMsgs !== late.inMsgs;
    if (delivers()) return false;
    const judging = new AbortController();
    const stopFollowing = onAbort(signal, () => judging.abort(signal.reason));
    try {
      let lives = false;
      const answered = abortable(this.roundTrip(connection), judging.signal).then(() => (lives = true));
      await Promise.race([answered, serverAnswersAnew(libraryOf(connection), this.sideOptions(connection), judging.signal).then((answers) => answers || answered)]);
      return !lives && !delivers();
    } catch (error) {
      if (signal.aborted) this.late = late;
      throw error;
    } finally {
      stopFollowing();
      judging.abort();
    }
  }

  /**
   * The side connection goes to the server the flow is on, alone (another server of the list answering says
   * nothing of this one), with TLS as configured but no credentials nor identity: the server's refusal of
   * them is an answer all the same.
   */
  private sideOptions(connection: NatsConnectionLike): Record<string, unknown> {
    const options = 'watched' in this.source ? (connection as { options?: Record<string, unknown> }).options ?? {} : this.source.connectOptions;
    const tls = options.tls as Record<string, unknown> | null | undefined;
    return {
      servers: [connection.getServer()],
      ignoreClusterUpdates: true,
      timeout: options.timeout,
      // No client certificate in any form (a secureContext may hold one: without it, the system's CAs verify).
      ...(tls ? { tls: { ...tls, cert: undefined, certFile: undefined, key: undefined, keyFile: undefined, pfx: undefined, passphrase: undefined, secureContext: undefined } } : {}),
    };
  }

  /**
   * Relays the connection's status events, and reports its losses, once per connection. nats.js 2.x never
   * ends a status iterator, so the watch stops it itself when the connection closes (3.x ends it then too).
   */
  private follow(connection: NatsConnectionLike): Watch {
    if (this.watch?.connection === connection) return this.watch;
    this.watch?.stop();
    const statuses = connection.status() as AsyncIterable<NatsStatusLike> & { stop?: () => void };
    const iterator = statuses[Symbol.asyncIterator]();
    let stopped = false;
    const watch: Watch = {
      connection,
      events: new EventEmitter(),
      connected: true,
      stop: () => {
        stopped = true;
        // nats.js's own stop() takes its listener off the connection at once; return() waits for the next event.
        if (typeof statuses.stop === 'function') statuses.stop();
        else void iterator.return?.();
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
        // A permissions violation (a subscription refused) is no reason for a loss.
        if (status.type === 'error' && !isPermissionViolation(status)) this.lastReason = statusReason(status);
        if (status.type === 'disconnect' || status.type === 'staleConnection') lost(this.lastReason ?? statusReason(status));
        if (status.type === 'reconnect') {
          watch.connected = true;
          this.lastReason = undefined;
        }
        // An EventEmitter throws an 'error' nobody listens to, which would end this relay (and reject unhandled):
        // its code is kept as the reason above, and open() waits for other events.
        if (status.type !== 'error') watch.events.emit(status.type, status);
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

/** The app's authenticator(s), run outside the package's dial context: a socket they dial is never taken for the connect()'s. */
function outsideDials(authenticator: unknown): { authenticator?: unknown } {
  const outside = (one: unknown) => (typeof one === 'function' ? NatsDials.outside(one as (...args: unknown[]) => unknown) : one);
  if (authenticator === undefined) return {};
  return { authenticator: Array.isArray(authenticator) ? authenticator.map(outside) : outside(authenticator) };
}

/**
 * What a status event says of why: the server's error code, or where it happened. 2.x puts it in `data`; 3.x
 * in `server` (a disconnect), `error` (an Error instance) or `pendingPings`.
 */
function statusReason(status: NatsStatusLike): string | undefined {
  if (status.type === 'staleConnection') return messages.natsStale();
  const detail = status.data ?? status.server ?? (status.error === undefined ? status.pendingPings : describeError(status.error));
  return detail === undefined ? status.type : `${status.type} ${String(detail)}`;
}

/** A subscription (or publish) refused, which leaves the connection up: 2.x adds a permissionContext, 3.x sends a PermissionViolationError. */
function isPermissionViolation(status: NatsStatusLike): boolean {
  return (status as { permissionContext?: unknown }).permissionContext !== undefined || (status.error as { name?: unknown } | undefined)?.name === 'PermissionViolationError';
}
