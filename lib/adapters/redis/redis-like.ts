/**
 * What the package uses of an ioredis client (ioredis 5 `Redis`). The package's own type rather than
 * ioredis', so that its published declarations compile where ioredis is not installed.
 */
export interface RedisLike {
  /** ioredis' state: 'wait' (lazy, never connected), 'connecting', 'connect', 'ready', 'close', 'reconnecting', 'end'. */
  readonly status: string;
  /** The client's options (ioredis' RedisOptions): where it connects, its credentials, its retryStrategy. */
  readonly options: object;
  /** The socket of the current connection, if any. */
  readonly stream?: unknown;
  /** True on an ioredis Cluster, which the package does not monitor. */
  readonly isCluster?: boolean;
  connect(): Promise<unknown>;
  ping(message: string): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(reconnect?: boolean): void;
  /** A new client with the same options, and `override` on top. */
  duplicate(override?: object): RedisLike;
  // `any[]` as ioredis' own EventEmitter types have it: a listener of its events takes what each event passes.
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
}

/** Whether `value` looks like an ioredis client of one server (not a Cluster). */
export function isRedisClient(value: unknown): value is RedisLike {
  const client = value as Partial<RedisLike> | null | undefined;
  return (
    typeof client === 'object' &&
    client !== null &&
    typeof client.status === 'string' &&
    typeof client.options === 'object' &&
    ['connect', 'ping', 'quit', 'disconnect', 'duplicate', 'on', 'removeListener'].every(
      (method) => typeof (client as Record<string, unknown>)[method] === 'function',
    )
  );
}
