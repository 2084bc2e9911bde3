/**
 * What the package uses of amqplib (2.x, its promise API) and of amqp-connection-manager. The package's own
 * types rather than theirs, so that its published declarations compile where neither is installed.
 */

// `any[]` as Node's EventEmitter types have it: a listener of these events takes what each event passes.
type Listener = (...args: any[]) => void;

/** An EventEmitter, as far as the package listens to one. */
export interface AmqpEmitterLike {
  on(event: string, listener: Listener): unknown;
  removeListener(event: string, listener: Listener): unknown;
  listenerCount?(event: string): number;
}

/** amqplib's Connection under a channel model: the socket and the negotiated heartbeat, in seconds. */
export interface AmqpRawConnectionLike extends AmqpEmitterLike {
  readonly stream?: unknown;
  readonly heartbeat?: number;
  /** Set once the connection closed or began to: nothing more goes through it. */
  readonly expectSocketClose?: boolean;
}

/** A message as amqplib delivers it to a consumer. */
export interface AmqpDelivery {
  readonly content: Buffer;
  readonly fields: {
    readonly deliveryTag: number;
    readonly redelivered: boolean;
    readonly exchange: string;
    readonly routingKey: string;
    readonly consumerTag: string;
  };
  readonly properties: { readonly headers?: Record<string, unknown>; readonly [property: string]: unknown };
}

/** A message handed to a consumer's onMessage: amqplib's, with its answer to the broker. */
export interface AmqpMessage extends AmqpDelivery {
  /** Acknowledges it. Once per message: a second answer is ignored (the broker would close the channel for it). */
  ack(): void;
  /** Refuses it; `requeue` (default true) puts it back on its queue, false dead-letters or drops it. */
  nack(options?: { requeue?: boolean }): void;
}

/** An amqplib Channel (a ConfirmChannel's publish takes a callback too). */
export interface AmqpChannelLike extends AmqpEmitterLike {
  readonly connection: AmqpRawConnectionLike;
  close(): Promise<void>;
  assertQueue(queue: string, options?: object): Promise<{ queue: string }>;
  checkQueue(queue: string): Promise<unknown>;
  checkExchange(exchange: string): Promise<unknown>;
  prefetch(count: number): Promise<unknown>;
  consume(queue: string, onMessage: (message: AmqpDelivery | null) => void, options?: object): Promise<{ consumerTag: string }>;
  cancel(consumerTag: string): Promise<unknown>;
  ack(message: AmqpDelivery): void;
  nack(message: AmqpDelivery, allUpTo?: boolean, requeue?: boolean): void;
  sendToQueue(queue: string, content: Buffer, options?: object, confirmed?: (error: unknown) => void): boolean;
}

/** amqplib's ChannelModel: what `await amqp.connect(url)` gives, one connection that never comes back once closed. */
export interface AmqpChannelModelLike extends AmqpEmitterLike {
  readonly connection: AmqpRawConnectionLike;
  close(): Promise<void>;
  createChannel(): Promise<AmqpChannelLike>;
  createConfirmChannel(): Promise<AmqpChannelLike>;
}

/** amqplib 2's recovering model (`amqp.connect(url, { recovery })`): it reconnects by itself. */
export interface AmqpRecoveringModelLike extends AmqpEmitterLike {
  waitForConnect(): Promise<unknown>;
  close(): Promise<void>;
  /** Waits for a connection, then opens the channel on it. */
  createChannel(): Promise<AmqpChannelLike>;
  createConfirmChannel(): Promise<AmqpChannelLike>;
}

/** amqp-connection-manager's AmqpConnectionManager: it reconnects by itself, its `connection` is the current ChannelModel. */
export interface AmqpConnectionManagerLike extends AmqpEmitterLike {
  readonly connection: AmqpChannelModelLike | undefined;
  isConnected(): boolean;
  close(): Promise<void>;
}

/**
 * Any connection an app may hand in, as amqplib's and amqp-connection-manager's own declarations type it: an
 * amqplib ChannelModel, amqplib's recovering model, an AmqpConnectionManager. Only what tells them apart, since
 * their declarations differ from what the package reads of them at run time (the Connection under a model is
 * declared with its server properties alone, not as the EventEmitter it is; a message's properties have no index
 * signature): amqpShape tells which of the three an object is, and the package reads it as AmqpChannelModelLike,
 * AmqpRecoveringModelLike or AmqpConnectionManagerLike from there.
 */
export type AmqpConnectionLike = AppChannelModel | AppRecoveringModel | AppConnectionManager;

interface AppChannelModel extends AmqpEmitterLike {
  readonly connection: object;
  close(): Promise<void>;
  createConfirmChannel(): Promise<object>;
}

interface AppRecoveringModel extends AmqpEmitterLike {
  waitForConnect(): Promise<unknown>;
  close(): Promise<void>;
  createConfirmChannel(): Promise<object>;
}

interface AppConnectionManager extends AmqpEmitterLike {
  readonly connection: object | undefined;
  isConnected(): boolean;
  close(): Promise<void>;
}

/** Which of the three an app's connection is; undefined for anything else (a callback-API model among them). */
export function amqpShape(value: unknown): 'manager' | 'recovering' | 'model' | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const has = (name: string) => typeof (value as Record<string, unknown>)[name] === 'function';
  if (!['on', 'removeListener', 'close'].every(has)) return undefined;
  // amqplib/callback_api's models take callbacks where the package awaits promises.
  if (/Callback/.test(value.constructor?.name ?? '')) return undefined;
  if (has('isConnected') && 'connection' in value) return 'manager';
  if (has('waitForConnect') && has('createConfirmChannel')) return 'recovering';
  const connection = (value as { connection?: unknown }).connection;
  if (has('createConfirmChannel') && typeof connection === 'object' && connection !== null) return 'model';
  return undefined;
}
