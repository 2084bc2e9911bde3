/**
 * What the package uses of a nats.js connection: 2.x (`nats`) or 3.x (`@nats-io/transport-node`, as Nest 12's
 * ClientNats holds it), whose connections differ in none of the methods below. The package's own types rather than nats.js's,
 * so that its published declarations compile where nats is not installed.
 */

/** A message as nats.js delivers it to a subscription. */
export interface NatsMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly reply?: string;
  readonly headers?: unknown;
  /** Answers a request (publishes to `reply`); false when the message has no reply subject. */
  respond(payload?: Uint8Array | string): boolean;
  string(): string;
  json<T = unknown>(): T;
}

export interface NatsSubscriptionLike {
  unsubscribe(max?: number): void;
  drain(): Promise<void>;
  isClosed(): boolean;
}

/**
 * One event of a connection's status stream. 2.x names its detail `data` (a server, an error code); 3.x has no
 * `data` but `server`, `error` (an Error instance) or `pendingPings`.
 */
export interface NatsStatusLike {
  readonly type: string;
  readonly data?: unknown;
  readonly server?: unknown;
  readonly error?: unknown;
  readonly pendingPings?: unknown;
}

/** A nats.js connection (`await connect(...)`), as the package drives or watches it. */
export interface NatsConnectionLike {
  closed(): Promise<void | Error>;
  close(): Promise<void>;
  drain(): Promise<void>;
  isClosed(): boolean;
  /** A new iterator per call; nats.js 2.x never ends it (3.x does, on close), so the package stops it itself. */
  status(): AsyncIterable<NatsStatusLike>;
  /** Messages received so far (inMsgs): one since a late beat says the flow delivers. */
  stats(): { readonly inMsgs: number };
  /** A PING answered by a PONG; rejects at once while the connection is disconnected. */
  rtt(): Promise<number>;
  subscribe(subject: string, options?: { queue?: string; callback?: (error: Error | null, message: NatsMessage) => void }): NatsSubscriptionLike;
  /** Drops the transport and dials again, keeping the connection and its subscriptions. */
  reconnect(): Promise<void>;
  getServer(): string;
}

/** Whether `value` is a nats.js connection, told by what the package calls on it. */
export function isNatsConnection(value: unknown): value is NatsConnectionLike {
  const connection = value as Partial<Record<keyof NatsConnectionLike, unknown>> | null;
  return (
    typeof connection === 'object' &&
    connection !== null &&
    ['closed', 'close', 'drain', 'isClosed', 'status', 'stats', 'rtt', 'subscribe', 'reconnect', 'getServer'].every(
      (method) => typeof connection[method as keyof NatsConnectionLike] === 'function',
    )
  );
}
