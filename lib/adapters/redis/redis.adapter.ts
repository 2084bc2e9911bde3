import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { BehaviorSubject, type Observable } from 'rxjs';
import { abortable, onAbort } from '../../core/abortable.js';
import type { ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import { messages } from '../../core/messages.js';
import { optionSecrets, urlSecrets } from '../known-secrets.js';
import { firstEvent } from '../first-event.js';
import { loadPeer } from '../load-peer.js';
import { applyTcpKeepAlive, type TcpKeepAliveOptions } from '../tcp-keepalive.js';
import { awaitsOnly, endRejectsOnlyHandled, isBlocked, isEcho, redisTarget } from './redis-commands.js';
import type { RedisLike } from './redis-like.js';

type RedisLibrary = typeof import('ioredis');

/** The app's client, watched; or how to create the package's own. */
export type RedisSource = { readonly watched: RedisLike } | { readonly url?: string; readonly redisOptions: Record<string, unknown> };

/** A PING on the connection that missed its deadline: what tells a dead flow from a slow server later. */
interface LatePing {
  readonly socket: Socket;
  /** The socket's bytesRead when the PING went out. */
  readonly bytesRead: number;
  /** Nothing of the app's awaited a reply ahead of it: a big upload or a paused write keeps a live socket silent. */
  readonly alone: boolean;
  answered: boolean;
}

/**
 * A Redis server through one ioredis client, the same object for the connection's whole life (the app may
 * keep it). The beat is `PING <token>` on that very connection, and only the echo of its own token counts:
 * ioredis pairs replies with commands by order alone, so another reply means the stream is out of step.
 * A subscriber is beaten the same way (PING is valid in SUBSCRIBE mode). Behind a blocking command (BLPOP
 * & co.) a PING would wait, so the beat then PINGs through a short-lived side connection to prove the
 * server, and the kernel keepalive set on the blocked socket proves that socket's own flow.
 *
 * A late beat reads the connection down, but the socket is dropped only on evidence that its flow is dead:
 * a server that is merely busy (a long script, a big KEYS) is silent on every connection, and dropping a
 * socket makes ioredis send its unanswered commands again. The evidence: the PING, sent when the connection
 * owed the app nothing, is still unanswered and not one byte came in on its socket, while the server
 * answered a new connection along the same path; or a reply came that is not the PING's own. A connection
 * busy with the app's commands (a big upload, a write held by CLIENT PAUSE) is never judged so, and a
 * blocked socket is never dropped: the kernel speaks for them (keepalive, and keepAlive.userTimeoutMs).
 *
 * Reconnection: the package's own client has ioredis' reconnect switched off, so every open() connects it
 * again with the engine's backoff. The app's client is never connected, quit, disconnected or reopened: its
 * own retryStrategy reconnects it, and open() waits for it to be ready.
 */
export class RedisAdapter implements ConnectionAdapter {
  readonly kind = 'redis';
  readonly target: string;
  readonly clientChanges$: Observable<unknown>;
  private readonly clients = new BehaviorSubject<RedisLike | undefined>(undefined);
  private client?: RedisLike;
  private readonly owned: boolean;
  /** The last PING of the connection's own that missed its deadline, until a reconnect judged it. */
  private late?: LatePing;
  /** A reply came that was not its PING's: the stream is out of step, and the socket must go. */
  private outOfStep = false;
  private onLoss?: (error: Error) => void;
  /** The last error the package's own client reported: the reason of a failed connect. */
  private connectError?: Error;
  private stopWatching?: () => void;
  /** The tokens of this adapter's PINGs begin so. */
  private readonly tokenPrefix = `connection-health-${randomBytes(4).toString('hex')}-`;
  private sequence = 0;
  private readonly isOwnPing = (name: string, args: readonly unknown[]) => name === 'ping' && String(args[0]).startsWith(this.tokenPrefix);

  constructor(
    private readonly source: RedisSource,
    /** Set on every new socket; undefined leaves the client's own. */
    private readonly keepAlive: TcpKeepAliveOptions | undefined,
    /**
     * Ends the socket of a client whose flow is dead (or whose handshake hangs), so that ioredis dials again;
     * false when it may not now, and the connection reads down with its socket left. A Nest ClientRedis ends its
     * whole pub/sub pair when one socket ends, and what then rejects must all be handled.
     */
    private readonly endSocket: (client: RedisLike) => boolean = (client) => (dropSocket(client), true),
  ) {
    this.owned = !('watched' in source);
    if ('watched' in source) this.client = source.watched;
    this.target = 'watched' in source ? redisTarget(source.watched.options) : redisTarget(source.redisOptions, source.url);
    this.clientChanges$ = this.clients.asObservable();
  }

  /** The url's password and every credential of the client's options (password, sentinelPassword, a TLS passphrase). */
  knownSecrets(): string[] {
    if ('watched' in this.source) return optionSecrets(this.source.watched.options);
    return [...urlSecrets(this.source.url), ...optionSecrets(this.source.redisOptions)];
  }

  currentClient(): unknown {
    return this.clients.value;
  }

  /** Whether ending the watched client's connection now would reject only its callers' handled commands and this adapter's PINGs. */
  endRejectsOnlyHandled(): boolean {
    return this.client === undefined || endRejectsOnlyHandled(this.client, this.isOwnPing);
  }

  async open(signal: AbortSignal): Promise<void> {
    const client = this.client ?? (await this.createClient());
    signal.throwIfAborted();
    this.watch(client);
    this.clients.next(undefined);
    if (await this.flowIsDead(client, signal)) {
      // Ended now, closed a tick later at the soonest (the socket's close comes from its handle).
      if (!this.endSocket(client)) throw new Error(messages.redisDeadFlowLeft());
      await untilStatus(client, ['close'], signal);
    }
    if (this.owned) await this.connectOwned(client, signal);
    else await this.awaitWatched(client, signal);
    await this.beat(client, signal);
    this.clients.next(client);
  }

  async ping(signal: AbortSignal): Promise<void> {
    const client = this.clients.value;
    if (!client || client.status !== 'ready') throw new Error(messages.redisNotReady(this.client?.status ?? 'not created'));
    return this.beat(client, signal);
  }

  /** The package's client: QUIT, awaited until `signal` aborts, then its socket is destroyed. The app's: left as it is. */
  async close(signal: AbortSignal): Promise<void> {
    const client = this.client;
    this.clients.next(undefined);
    this.clients.complete();
    this.stopWatching?.();
    if (!this.owned || !client || client.status === 'end' || client.status === 'wait') return;
    const ended = untilStatus(client, ['end'], signal).catch(() => undefined);
    const stopForcing = onAbort(signal, () => forceEnd(client));
    try {
      if (client.status === 'ready') await client.quit().catch(() => forceEnd(client));
      else forceEnd(client);
      await ended;
    } finally {
      stopForcing();
    }
  }

  observeLoss(onLoss: (error: Error) => void): () => void {
    this.onLoss = onLoss;
    return () => (this.onLoss = undefined);
  }

  private async createClient(): Promise<RedisLike> {
    const source = this.source as Exclude<RedisSource, { watched: RedisLike }>;
    const { Redis } = await loadPeer<RedisLibrary>('ioredis', 'Redis connections');
    // ioredis never reconnects behind the engine's back; open() connects, with the engine's backoff.
    const options = { ...source.redisOptions, lazyConnect: true, retryStrategy: () => null };
    const client = (source.url === undefined ? new Redis(options) : new Redis(source.url, options)) as unknown as RedisLike;
    // Ours to listen to: without a listener ioredis prints every connection error to the console. It also
    // says why a connect failed (WRONGPASS, NOAUTH) where connect() itself only says "Connection is closed.".
    client.on('error', (error: Error) => (this.connectError = error));
    this.client = client;
    return client;
  }

  /** Listens for the ends of connections (and sets keepalive on each new socket), once for the adapter's life. */
  private watch(client: RedisLike): void {
    if (this.stopWatching) return;
    const onConnect = () => {
      const socket = client.stream as Socket | undefined;
      if (this.keepAlive && typeof socket?.setKeepAlive === 'function') void applyTcpKeepAlive(socket, this.keepAlive).catch(() => undefined);
    };
    const onClose = () => {
      if (this.clients.value !== client) return;
      this.clients.next(undefined);
      this.onLoss?.(new Error(messages.redisClosed(closeReason(client))));
    };
    client.on('connect', onConnect);
    client.on('close', onClose);
    // An app's client may be connected already: its socket gets keepalive now, the next ones on 'connect'.
    if (client.status === 'connect' || client.status === 'ready') onConnect();
    this.stopWatching = () => {
      client.removeListener('connect', onConnect);
      client.removeListener('close', onClose);
    };
  }

  /** The package's client: ended (by a loss, a drop or an aborted attempt), so connected again. */
  private async connectOwned(client: RedisLike, signal: AbortSignal): Promise<void> {
    if (client.status === 'ready') return;
    if (client.status !== 'end' && client.status !== 'wait') {
      const ended = untilStatus(client, ['end'], signal);
      forceEnd(client);
      await ended;
    }
    this.connectError = undefined;
    const stopForcing = onAbort(signal, () => forceEnd(client));
    try {
      await abortable(client.connect(), signal);
    } catch (error) {
      // Set by the 'error' listener meanwhile (TypeScript cannot know).
      const reported = this.connectError as Error | undefined;
      if (signal.aborted || !reported) throw error;
      throw new Error(messages.redisClosed(reported.message), { cause: error });
    } finally {
      stopForcing();
    }
  }

  /** The app's client: its own retryStrategy reconnects it; this waits until it is ready. */
  private async awaitWatched(client: RedisLike, signal: AbortSignal): Promise<void> {
    if (client.status === 'end') throw new Error(messages.redisClientEnded());
    // A lazyConnect client ('wait') is the app's to connect, by connect() or a first command: connecting it
    // here would make the app's own connect() throw "Redis is already connecting/connected".
    let reached: string;
    try {
      // A connection attempt of the client's that failed ends this attempt, with its reason: the engine
      // counts it and waits its backoff, as for a connection it makes itself.
      reached = await untilStatus(client, ['ready', 'end', 'close'], signal);
    } catch (error) {
      const status = client.status;
      // Connected, but the handshake (AUTH, SELECT, the INFO ready check) went unanswered: ioredis has no
      // deadline there and would wait for ever, so its socket is dropped and its retryStrategy dials again.
      if (status === 'connect') this.endSocket(client);
      throw new Error(status === 'wait' ? messages.redisNotConnectedByApp() : messages.redisNotReadyInTime(status), { cause: error });
    }
    if (reached === 'end') throw new Error(messages.redisClientEnded());
    if (reached === 'close') throw new Error(messages.redisClosed(closeReason(client)));
  }

  /** A PING on the connection itself, or through a side connection while a blocking command holds it. */
  private async beat(client: RedisLike, signal: AbortSignal): Promise<void> {
    if (isBlocked(client)) return this.sideBeat(client, signal);
    const socket = client.stream as Socket | undefined;
    if (!socket) throw new Error(messages.redisNotReady(client.status));
    const token = this.token();
    const alone = awaitsOnly(client, this.isOwnPing);
    const ping: LatePing = { socket, bytesRead: socket.bytesRead, alone, answered: false };
    const reply = client.ping(token).then((answer) => {
      ping.answered = true;
      // A late reply is judged too: one not its own means the stream has been out of step since.
      if (!isEcho(answer, token)) this.outOfStep = true;
      return answer;
    });
    try {
      await abortable(reply, signal);
    } catch (error) {
      // No answer from the server: the deadline, or the client's own commandTimeout. A reply error
      // (LOADING, NOAUTH) is an answer, with bytes in.
      if (signal.aborted || (error as Error)?.name !== 'ReplyError') this.late = ping;
      throw error;
    }
    if (this.outOfStep) throw new Error(messages.redisOutOfStep());
  }

  /**
   * Whether the connection's flow died (a NAT or firewall forgot it, a proxy lost bytes) rather than the
   * server being slow: a reply not its own came, or the late PING, sent when the connection owed the app
   * nothing, is still unanswered, not one byte came in on its socket, and yet the server answers a new
   * connection along the same path. Until the server answers one, nothing is known: this throws, and the
   * next attempt asks again.
   */
  private async flowIsDead(client: RedisLike, signal: AbortSignal): Promise<boolean> {
    const late = this.late;
    if (this.outOfStep || client.status !== 'ready' || !late?.alone || late.answered || late.socket !== client.stream) {
      const dead = this.outOfStep && client.status === 'ready';
      this.late = undefined;
      this.outOfStep = false;
      return dead;
    }
    await this.sidePing(client, signal);
    this.late = undefined;
    return !late.answered && late.socket.bytesRead === late.bytesRead && !late.socket.destroyed;
  }

  /**
   * The beat of a connection blocked in BLPOP & co.: its socket is open, and the server answers a PING on a
   * side connection. A late one only fails the beat: the blocked socket is never dropped for it.
   */
  private async sideBeat(client: RedisLike, signal: AbortSignal): Promise<void> {
    const socket = client.stream as Socket | undefined;
    if (!socket || socket.destroyed) throw new Error(messages.redisClosed(closeReason(client)));
    await this.sidePing(client, signal);
  }

  /** Connects a side client with the client's options, for this PING alone, along the same path. */
  private async sidePing(client: RedisLike, signal: AbortSignal): Promise<void> {
    const side = client.duplicate({ lazyConnect: true, retryStrategy: () => null, enableOfflineQueue: false, autoResubscribe: false });
    side.on('error', () => undefined);
    try {
      await abortable(side.connect(), signal);
      const token = this.token();
      if (!isEcho(await abortable(side.ping(token), signal), token)) throw new Error(messages.redisOutOfStep());
    } finally {
      forceEnd(side);
    }
  }

  private token(): string {
    return `${this.tokenPrefix}${++this.sequence}`;
  }
}

/** Why the client's last socket closed, as the socket keeps it (ECONNREFUSED, ECONNRESET); none for a FIN. */
function closeReason(client: RedisLike): string | undefined {
  return (client.stream as Socket | undefined)?.errored?.message;
}

/** Destroys a connection's socket at once: ioredis handles it as a lost connection. */
export function dropSocket(client: RedisLike): void {
  (client.stream as Socket | undefined)?.destroy();
}

/**
 * Ends a client of the package's for good, at once. disconnect() alone only half-closes the socket, which
 * on a dead path waits minutes for a FIN, and a socket still connecting is held by ioredis' connector alone.
 */
function forceEnd(client: RedisLike): void {
  // Once ended, disconnect() would only arm ioredis' disconnectTimeout for a close that already happened.
  if (client.status !== 'end') client.disconnect();
  dropSocket(client);
  (client as { connector?: { stream?: Socket } }).connector?.stream?.destroy();
}

/**
 * Resolves with the first of `statuses` the client is in or reaches (ioredis emits each status as an event);
 * rejects when `signal` aborts. Leaves no listener behind, since the app's client lives on.
 */
async function untilStatus(client: RedisLike, statuses: readonly string[], signal: AbortSignal): Promise<string> {
  if (statuses.includes(client.status)) return client.status;
  return (await firstEvent(client, statuses, signal)).event;
}
