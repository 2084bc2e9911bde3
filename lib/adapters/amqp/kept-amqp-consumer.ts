import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { abortable } from '../../core/abortable.js';
import { messages } from '../../core/messages.js';
import { describeError } from '../../core/redact.js';
import { throttleReport, type CallbackFailure, type CallbackReport } from '../../core/user-callback.js';
import type { AmqpChannelLike, AmqpDelivery, AmqpMessage, AmqpRawConnectionLike } from './amqp-like.js';
import { isClosed, type AmqpSource } from './amqp-source.js';

/** A consumer the package makes on every new connection, so it survives reconnects. */
export interface AmqpConsumerDefinition {
  /** The queue to consume from. */
  queue: string;
  /**
   * assertQueue options (durable, arguments, ...): the queue is declared on every connection, and again
   * when it was deleted. Default: not declared; the queue must exist, and its absence reads degraded.
   */
  assert?: { readonly [option: string]: unknown };
  /**
   * How many unacknowledged messages the broker may send this consumer at once (basic.qos): as many
   * onMessage calls run at once at most. Default 10.
   */
  prefetch?: number;
  /** true: the broker counts a message delivered as soon as it sends it. Default false: acknowledged once onMessage resolved. */
  noAck?: boolean;
  /**
   * Called for each message; it may be async. Once it resolves, the message is acknowledged, unless it
   * answered itself (`message.ack()` / `message.nack()`). One that throws or rejects is logged and never
   * crashes the process, and its message is NACKed (unless it answered): see `requeueFailed`.
   */
  onMessage(message: AmqpMessage): unknown;
  /**
   * What becomes of a message whose onMessage failed. 'once': requeued a second later, and when it fails
   * again in this process, NACKed without requeue, so the queue's dead-letter exchange receives it (the
   * broker drops it when the queue has none); a message that fails every time can neither spin for ever
   * nor hold up the queue behind it. 'always': requeued a second later every time (a quorum queue's
   * delivery-limit then decides). Default 'once'.
   */
  requeueFailed?: 'once' | 'always';
}

/** Unacknowledged messages a consumer takes at once, unless its definition says otherwise. */
export const AMQP_DEFAULT_PREFETCH = 10;

/** How many failed messages a consumer remembers, the oldest forgotten first. */
const REMEMBERED_FAILURES = 1_000;

/**
 * A failed message is NACKed this much later: RabbitMQ requeues a NACKed message at once, so a message that
 * fails every time would otherwise run the handler (and its side effects) thousands of times a second.
 */
export const AMQP_NACK_DELAY_MS = 1_000;

/**
 * One consumer of the app's, kept on its own channel (a 404 or 406 on it closes that channel alone): made on
 * every new connection, and made again after the broker cancelled it (a deleted queue) or closed its channel.
 * While it is not consuming, `lost` says why, and the connection reads degraded.
 */
export class KeptAmqpConsumer {
  /** Why the consumer is not consuming on the current connection; undefined while it is. */
  lost?: string;
  private channel?: AmqpChannelLike;
  private consumerTag?: string;
  private making?: Promise<void>;
  /** Handlers still running: close() lets them finish, so their messages are acknowledged and not delivered twice. */
  private readonly running = new Set<Promise<void>>();
  private readonly report: CallbackReport;
  private readonly place: string;
  /**
   * Messages whose handler failed here, by messageId or content: the broker's `redelivered` flag cannot
   * tell, since it is set as well after a lost connection, a shutdown or another consumer's NACK.
   */
  private readonly failed = new Set<string>();

  constructor(
    private readonly definition: AmqpConsumerDefinition,
    private readonly connectionName: string,
    report: CallbackReport,
  ) {
    this.place = `the onMessage handler of queue '${definition.queue}'`;
    // Across connections: a poison message redelivered in a loop is logged once a minute.
    this.report = throttleReport(report);
  }

  /** Whether it consumes on `connection` now. */
  consumesOn(connection: AmqpRawConnectionLike): boolean {
    return this.lost === undefined && this.channel?.connection === connection && !isClosed(connection);
  }

  /**
   * Makes the consumer on the source's current connection. Never rejects: a failure (a missing queue, a
   * declare refused) is kept in `lost`, the connection itself being fine. One making at a time.
   */
  make(source: AmqpSource, signal: AbortSignal): Promise<void> {
    this.making ??= this.consume(source, signal).finally(() => (this.making = undefined));
    return this.making;
  }

  /**
   * Stops deliveries, lets running handlers finish until `signal` aborts, then closes its channel. On a
   * connection the broker does not read (`answered` false: blocked), nothing it would answer is awaited.
   */
  async close(signal: AbortSignal, answered: boolean): Promise<void> {
    const { channel, consumerTag } = this;
    this.channel = undefined;
    if (!channel) return;
    const settle = async (reply: Promise<unknown>): Promise<void> => {
      if (answered && !signal.aborted) await abortable(reply, signal);
      else void reply.catch(() => undefined);
    };
    try {
      if (consumerTag !== undefined && !isClosed(channel.connection)) await settle(channel.cancel(consumerTag));
      await abortable(Promise.all(this.running), signal);
    } catch {
      // A channel already closed, a broker that stopped answering, or a handler still running at the deadline.
    } finally {
      // Closed in any case, so that nothing of the package's stays on the app's connection: the broker
      // requeues what was not acknowledged.
      await settle(channel.close()).catch(() => undefined);
    }
  }

  private async consume(source: AmqpSource, signal: AbortSignal): Promise<void> {
    const { queue, assert, prefetch = AMQP_DEFAULT_PREFETCH, noAck = false } = this.definition;
    // A channel whose consumer the broker cancelled stays open: it goes, and the consumer gets a new one.
    void this.channel?.close().catch(() => undefined);
    this.channel = undefined;
    let channel: AmqpChannelLike | undefined;
    try {
      channel = await source.openChannel(false, signal);
      const opened = channel;
      let closedBecause: string | undefined;
      channel.on('error', (error: Error) => (closedBecause = error.message));
      channel.on('close', () => {
        if (this.channel !== opened) return;
        this.channel = undefined;
        this.lost = messages.amqpConsumerChannelClosed(queue, closedBecause);
      });
      if (assert) await abortable(channel.assertQueue(queue, assert), signal);
      await abortable(channel.prefetch(prefetch), signal);
      this.channel = channel;
      const { consumerTag } = await abortable(
        channel.consume(queue, (delivery) => this.deliver(opened, delivery), { noAck }),
        signal,
      );
      this.consumerTag = consumerTag;
      this.lost = undefined;
    } catch (error) {
      if (this.channel === channel) this.channel = undefined;
      this.lost = messages.amqpConsumerNotMade(queue, describeError(error));
      void channel?.close().catch(() => undefined);
    }
  }

  /** Remembers a failed message; false when it had failed here before. */
  private failedFirstTime(delivery: AmqpDelivery): boolean {
    const { messageId } = delivery.properties;
    const key =
      typeof messageId === 'string' && messageId !== ''
        ? `id:${messageId}`
        : `sha256:${createHash('sha256').update(`${delivery.fields.exchange}\0${delivery.fields.routingKey}\0`).update(delivery.content).digest('base64')}`;
    if (this.failed.delete(key)) return false;
    this.failed.add(key);
    if (this.failed.size > REMEMBERED_FAILURES) this.failed.delete(this.failed.values().next().value as string);
    return true;
  }

  private deliver(channel: AmqpChannelLike, delivery: AmqpDelivery | null): void {
    if (delivery === null) {
      // basic.cancel from the broker: the queue was deleted, or the node holding it went down.
      if (this.channel === channel) this.lost = messages.amqpConsumerCancelled(this.definition.queue);
      return;
    }
    const running = this.handle(channel, delivery);
    this.running.add(running);
    void running.finally(() => this.running.delete(running));
  }

  /**
   * Runs the app's handler, then answers the broker once: ACK when it resolved, NACK (requeue) a second after
   * it failed, nothing when it answered itself. A channel closed meanwhile needs no answer: the broker
   * delivers what was not acknowledged again.
   */
  private async handle(channel: AmqpChannelLike, delivery: AmqpDelivery): Promise<void> {
    const noAck = this.definition.noAck === true;
    let answered = noAck;
    const answer = (send: () => void) => {
      if (answered) return;
      answered = true;
      try {
        send();
      } catch {
        // IllegalOperationError: the channel closed; the broker requeues the message.
      }
    };
    const message: AmqpMessage = Object.assign(delivery, {
      ack: () => answer(() => channel.ack(delivery)),
      nack: ({ requeue = true }: { requeue?: boolean } = {}) => answer(() => channel.nack(delivery, false, requeue)),
    });
    let how: CallbackFailure = 'threw';
    try {
      const result = this.definition.onMessage(message);
      how = 'rejected';
      await result;
      message.ack();
    } catch (error) {
      // A message that failed before fails again: requeued, it would spin for ever and hold up the queue behind it.
      const requeue = this.definition.requeueFailed === 'always' || this.failedFirstTime(delivery);
      const next = answered
        ? messages.amqpMessageAnswered(noAck)
        : requeue
          ? messages.amqpMessageNacked(AMQP_NACK_DELAY_MS)
          : messages.amqpMessageDeadLettered();
      this.report(error, messages.callbackFailed(this.connectionName, this.place, how, describeError(error), next));
      // Awaited, so that close() lets the NACK go out before the channel closes.
      if (!answered && requeue) await sleep(AMQP_NACK_DELAY_MS, undefined, { ref: false });
      message.nack({ requeue });
    }
  }
}
