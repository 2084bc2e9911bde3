import { randomBytes } from 'node:crypto';
import { BehaviorSubject, type Observable } from 'rxjs';
import { abortable, onAbort } from '../../core/abortable.js';
import type { BeatReport, ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import { messages } from '../../core/messages.js';
import type { CallbackReport } from '../../core/user-callback.js';
import type { AmqpChannelLike, AmqpChannelModelLike, AmqpDelivery, AmqpRawConnectionLike } from './amqp-like.js';
import { channelOn, destroySocket, isClosed, OwnedAmqpConnection, type AmqpSource } from './amqp-source.js';
import { KeptAmqpConsumer, type AmqpConsumerDefinition } from './kept-amqp-consumer.js';

export interface AmqpAdapterSettings {
  readonly target?: string;
  readonly consumers: readonly AmqpConsumerDefinition[];
  /** A beat publishes a message and consumes it back, or declares its queue passively (see the `probe` option). */
  readonly probe: 'publish' | 'declare';
  readonly connectionName: string;
  readonly report: CallbackReport;
  /** The credentials of the package's own connection. */
  readonly secrets: readonly string[];
}

/** A beat queue left without its consumer is deleted by the broker after this long. */
const BEAT_QUEUE_EXPIRES_MS = 10_000;

/**
 * What a beat declares passively when the broker refused the package's beat queue. Every vhost has it, no
 * client can delete it (RabbitMQ refuses: "deletion of system exchange"), and a passive declare needs no
 * permission at all; the default exchange ('') would not do: RabbitMQ refuses every declare of it.
 */
const ALWAYS_THERE_EXCHANGE = 'amq.direct';

/** AMQP's reply code for an operation the user's permissions do not allow (ACCESS_REFUSED). */
const ACCESS_REFUSED = 403;

function isAccessRefused(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === ACCESS_REFUSED;
}

/** Drops a session of the package's: its channel, or its whole connection when that was opened for it alone. */
function discard({ model, session }: { model?: AmqpChannelModelLike; session?: AmqpSession }): void {
  session?.release();
  if (model) destroySocket(model.connection);
  else void session?.channel.close().catch(() => undefined);
}

/** What the package holds on one connection: its beat channel and queue, and what the connection told. */
interface AmqpSession {
  readonly connection: AmqpRawConnectionLike;
  readonly channel: AmqpChannelLike;
  /**
   * Server-named and exclusive: a new one per connection, so an old connection the broker still holds never
   * locks it. Undefined when the broker refused it to the user: beats then declare ALWAYS_THERE_EXCHANGE.
   */
  readonly queue?: string;
  /** The broker's reason while it blocks the connection (connection.blocked: a memory or disk alarm). */
  blocked?: string;
  /** Called when the broker blocks the connection: a round trip waiting then ends, the broker having spoken. */
  whenBlocked?: () => void;
  /** The exchange of a beat still under way, late or not: the next beat waits for it rather than queue another. */
  exchanging?: Promise<void>;
  /** Why the connection or the beat channel closed; undefined while open. */
  closed?: string;
  /** Removes the listeners on the connection. */
  release(): void;
}

/**
 * An AMQP 0-9-1 connection (RabbitMQ) through amqplib: the package's own, or the app's, watched. On every
 * connection the package opens a confirm channel and a server-named exclusive queue of its own. A beat
 * publishes a token there with a publisher confirm and waits for it to come back on its consumer (the
 * broker accepted, routed and delivered a message within the deadline), or, where a publish could block
 * the app's consumers during a resource alarm, declares that queue passively (probe 'declare'). While the
 * broker blocks the connection (connection.blocked) nothing goes through it: the beat then reads it
 * degraded with the broker's reason, and AMQP's heartbeat frames keep watching the flow.
 *
 * A late beat reads the connection down. At the next attempt a new beat channel races the old one (on a
 * new connection, for the package's own), and the old is dropped only when it stayed silent until the
 * attempt's deadline while the new one answered: a slow broker, or a flow slow on its own, is never made to
 * redeliver every unacknowledged message by a drop of the package's. The heartbeat frames amqplib
 * negotiates close a flow that died for good.
 *
 * The app's consumers declared in `consumers` are made on every new connection, each on its own channel;
 * one the broker cancelled reads degraded, with why, until a later beat made it again.
 */
export class AmqpAdapter implements ConnectionAdapter {
  readonly kind = 'amqp';
  readonly clientChanges$: Observable<unknown>;
  private readonly clients = new BehaviorSubject<unknown>(undefined);
  private session?: AmqpSession;
  private readonly consumers: KeptAmqpConsumer[];
  /** Beats wait for their token on the beat queue's consumer. */
  private readonly awaited = new Map<string, () => void>();
  private onLoss?: (error: Error) => void;
  /** Aborted by close(): stops consumers being made again. */
  private readonly closing = new AbortController();
  private readonly tokenPrefix = `connection-health-${randomBytes(4).toString('hex')}-`;
  private sequence = 0;
  /**
   * The broker refused the package's beat queue, or its publish there (a user without configure permission
   * on amq.gen-*, or without write permission on the default exchange): asked once, never again for this
   * connection's later sessions, so beats and reconnects cost the broker no refused channel.
   */
  private queueRefused = false;

  readonly target?: string;

  constructor(
    private readonly source: AmqpSource,
    private readonly settings: AmqpAdapterSettings,
  ) {
    this.target = settings.target;
    this.consumers = settings.consumers.map((consumer) => new KeptAmqpConsumer(consumer, settings.connectionName, settings.report));
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
    const current = this.session;
    const live = current && current.closed === undefined && !isClosed(current.connection) ? current : undefined;
    let session: AmqpSession;
    if (!live) {
      current?.release();
      // Its connection may live on (the beat queue was deleted, the channel closed by an error): it goes.
      if (current && !isClosed(current.connection)) void current.channel.close().catch(() => undefined);
      this.session = undefined;
      session = await this.newSession((confirm, opening) => this.source.openChannel(confirm, opening), signal);
      // Kept at once: an attempt that fails after this point leaves it for the next, not behind.
      this.session = session;
      await this.roundTrip(session, signal);
    } else {
      session = await this.keepOrReplace(live, signal);
    }
    this.session = session;
    await Promise.all(this.consumers.filter((consumer) => !consumer.consumesOn(session.connection)).map((consumer) => consumer.make(this.source, signal)));
    this.clients.next(this.source.client());
  }

  async ping(signal: AbortSignal): Promise<void | BeatReport> {
    const session = this.session;
    if (!session || session.closed !== undefined || !this.clients.value) throw new Error(messages.amqpNotOpen(session?.closed));
    const lost = this.consumers.filter((consumer) => consumer.lost !== undefined);
    // Made again in the background: the beat's verdict never waits on a queue being declared.
    for (const consumer of lost) void consumer.make(this.source, this.closing.signal);
    await this.roundTrip(session, signal);
    const impairments = [...(session.blocked === undefined ? [] : [messages.amqpBlocked(session.blocked)]), ...lost.map((consumer) => consumer.lost as string)];
    return impairments.length ? { impairment: impairments.join('; ') } : undefined;
  }

  /** Consumers stop and their handlers finish, then the package's channels close, and its own connection. */
  async close(signal: AbortSignal): Promise<void> {
    this.closing.abort();
    this.clients.next(undefined);
    this.clients.complete();
    const session = this.session;
    session?.release();
    // A blocked connection is not read by the broker: a close-ok would come after the alarm, so none is awaited.
    const answered = session?.blocked === undefined;
    await Promise.all(this.consumers.map((consumer) => consumer.close(signal, answered)));
    if (session && !isClosed(session.connection)) {
      const closed = session.channel.close().catch(() => undefined);
      if (answered) await abortable(closed, signal).catch(() => undefined);
    }
    await this.source.close(signal);
  }

  observeLoss(onLoss: (error: Error) => void): () => void {
    this.onLoss = onLoss;
    return () => (this.onLoss = undefined);
  }

  /**
   * A connection alive but silent to the last beat: a slow broker, or a beat channel or flow that lost
   * frames (a proxy dropped bytes: an RPC whose reply never comes wedges its channel for good, and the
   * broker's heartbeats still arrive). A new beat channel races the old one, on a new connection of the
   * package's own or, on the app's connection, on that same connection. The old one keeps its chance until
   * the attempt's deadline even when the new one answered first: a flow slow on its own (a TCP back-off
   * after a loss, credit flow) answers a little later, and dropping it would make the broker deliver every
   * unacknowledged message again. Only an old one silent to the end is dropped; when the attempt ran out
   * meanwhile, the new one is kept for the next.
   */
  private async keepOrReplace(live: AmqpSession, signal: AbortSignal): Promise<AmqpSession> {
    const race = new AbortController();
    const stopRacing = onAbort(signal, () => race.abort(signal.reason));
    const owned = this.source instanceof OwnedAmqpConnection ? this.source : undefined;
    const fresh: { model?: AmqpChannelModelLike; session?: AmqpSession } = {};
    const kept = this.roundTrip(live, signal).then(() => live);
    const replacement = (async () => {
      const model = owned ? (fresh.model = await owned.connectAnew(race.signal)) : undefined;
      const openChannel = (confirm: boolean, opening: AbortSignal) => (model ? channelOn(model, confirm, opening) : this.source.openChannel(confirm, opening));
      const session = (fresh.session = await this.newSession(openChannel, race.signal));
      await this.roundTrip(session, race.signal);
      return session;
    })();
    try {
      const first = await Promise.any([kept, replacement]).catch((failed: AggregateError) => Promise.reject(failed.errors[0]));
      const keptAnswered = first === live || (await kept.then(() => true, () => false));
      if (keptAnswered) {
        discard(fresh);
        return live;
      }
      if (this.closing.signal.aborted) throw new Error(messages.amqpNotOpen('closing'));
      discard({ session: live });
      if (owned && fresh.model) owned.adopt(fresh.model);
      this.session = first;
      signal.throwIfAborted();
      return first;
    } catch (error) {
      if (this.session !== fresh.session) discard(fresh);
      throw error;
    } finally {
      stopRacing();
      race.abort();
    }
  }

  /**
   * The beat channel, its queue and its consumer on a connection; listens for the connection's news. A user
   * whose configure permission leaves out amq.gen-* (`^orders\..*`) works for the app, and only the
   * package's own queue is refused: the beat then needs no queue, and reads the connection up on a passive
   * declare of an exchange that always exists. That round trip goes through the same reader, channel process
   * and writer of the broker; what it leaves out, a queue and a route of the package's own, says nothing of
   * the app's queues (its consumers are watched on their own). Degraded for good would be a false alarm.
   * The same for a user refused the publish of probe 'publish', found by a first publish here.
   */
  private async newSession(openChannel: (confirm: boolean, signal: AbortSignal) => Promise<AmqpChannelLike>, signal: AbortSignal): Promise<AmqpSession> {
    if (!this.queueRefused) {
      try {
        return await this.sessionWithQueue(await openChannel(true, signal), signal);
      } catch (error) {
        if (!isAccessRefused(error)) throw error;
        this.queueRefused = true;
      }
    }
    return this.watch(await openChannel(false, signal), undefined);
  }

  private async sessionWithQueue(channel: AmqpChannelLike, signal: AbortSignal): Promise<AmqpSession> {
    let session: AmqpSession | undefined;
    // The broker's refusal closes the channel: amqplib tells its code on the channel's 'error' alone, and
    // rejects a pending publisher confirm with a bare 'channel closed'.
    let refusal: unknown;
    channel.on('error', (error: unknown) => (refusal = isAccessRefused(error) ? error : refusal));
    try {
      // Auto-delete: it goes once its consumer does, with the channel. Expiring: one whose consumer never
      // came (an attempt given up between the two) goes too, rather than live as long as the connection.
      const declared = channel.assertQueue('', { exclusive: true, autoDelete: true, expires: BEAT_QUEUE_EXPIRES_MS });
      const { queue } = await abortable(declared, signal);
      session = this.watch(channel, queue);
      const watched = session;
      await abortable(channel.consume(queue, (delivery) => this.returned(watched, delivery), { noAck: true }), signal);
      // A user allowed the queue may still be refused the publish (no write permission on the default
      // exchange): found here, before the connection reads up, rather than as a loss at every first beat.
      if (this.settings.probe === 'publish') await this.roundTrip(session, signal);
      return session;
    } catch (error) {
      session?.release();
      void channel.close().catch(() => undefined);
      throw refusal ?? error;
    }
  }

  private watch(channel: AmqpChannelLike, queue: string | undefined): AmqpSession {
    const { connection } = channel;
    let channelError: string | undefined;
    const onClose = (error?: Error) => this.lose(session, messages.amqpClosed(error?.message));
    const onBlocked = (reason: string) => {
      session.blocked = String(reason);
      session.whenBlocked?.();
    };
    const onUnblocked = () => (session.blocked = undefined);
    const session: AmqpSession = {
      connection,
      channel,
      queue,
      release: () => {
        connection.removeListener('close', onClose);
        connection.removeListener('blocked', onBlocked);
        connection.removeListener('unblocked', onUnblocked);
      },
    };
    connection.on('close', onClose);
    connection.on('blocked', onBlocked);
    connection.on('unblocked', onUnblocked);
    channel.on('error', (error: Error) => (channelError = error.message));
    // The connection closing closes its channels first: the connection's reason is the one told.
    channel.on('close', () => setImmediate(() => this.lose(session, messages.amqpBeatChannelClosed(channelError))));
    return session;
  }

  /** The session can carry no more beats: told at once, unless it is no longer the connection's. */
  private lose(session: AmqpSession, reason: string): void {
    if (session.closed !== undefined) return;
    session.closed = reason;
    if (this.session !== session || !this.clients.value) return;
    this.clients.next(undefined);
    this.onLoss?.(new Error(reason));
  }

  /**
   * Publishes a token with a confirm to the beat queue and waits for it to come back on its consumer; or
   * declares the queue passively; or, without a queue of the package's, an exchange. A blocked connection
   * carries none, and the broker's connection.blocked is its answer: RabbitMQ sends it to a connection when
   * that connection first publishes during an alarm.
   */
  private async roundTrip(session: AmqpSession, signal: AbortSignal): Promise<void> {
    if (session.blocked !== undefined) return;
    const blocked = new Promise<void>((resolve) => (session.whenBlocked = resolve));
    // A late exchange that finally answers proves the path as well as a new one would; and amqplib sends
    // one RPC at a time per channel, so a new one queued behind late ones would answer last.
    session.exchanging ??= this.exchange(session).finally(() => (session.exchanging = undefined));
    try {
      await abortable(Promise.race([session.exchanging, blocked]), signal);
    } finally {
      session.whenBlocked = undefined;
    }
  }

  private async exchange({ channel, queue }: AmqpSession): Promise<void> {
    if (queue === undefined) {
      await channel.checkExchange(ALWAYS_THERE_EXCHANGE);
      return;
    }
    if (this.settings.probe === 'declare') {
      await channel.checkQueue(queue);
      return;
    }
    const token = `${this.tokenPrefix}${++this.sequence}`;
    const returned = new Promise<void>((resolve) => this.awaited.set(token, resolve));
    const confirmed = new Promise<void>((resolve, reject) => {
      channel.sendToQueue(queue, Buffer.from(token), {}, (error) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve()));
    });
    try {
      await Promise.all([confirmed, returned]);
    } finally {
      this.awaited.delete(token);
    }
  }

  private returned(session: AmqpSession, delivery: AmqpDelivery | null): void {
    // Cancelled by the broker: someone deleted the beat queue. The next open() makes a new one.
    if (delivery === null) this.lose(session, messages.amqpBeatQueueCancelled());
    else this.awaited.get(delivery.content.toString())?.();
  }
}
