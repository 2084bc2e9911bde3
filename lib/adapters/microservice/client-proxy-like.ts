/**
 * What the package uses of a Nest ClientProxy (@nestjs/microservices 11 or 12). The package's own type rather
 * than Nest's, so that @nestjs/microservices stays an optional peer the package never loads.
 */
export interface ClientProxyLike {
  /** Connects, or returns the attempt under way; resolves at once on a connected proxy. */
  connect(): Promise<unknown>;
  /** The transport's own client (an amqp-connection-manager, an ioredis pair, an MQTT.js client, a nats.js connection); throws before connect(). */
  unwrap<T>(): T;
  close(): unknown;
  send(pattern: unknown, data: unknown): unknown;
  emit(pattern: unknown, data: unknown): unknown;
}

/** Whether `value` looks like a ClientProxy: an object with Nest's client methods, whatever its transport. */
export function isClientProxy(value: unknown): value is ClientProxyLike {
  if (typeof value !== 'object' || value === null) return false;
  return ['connect', 'unwrap', 'close', 'send', 'emit'].every((method) => typeof (value as Record<string, unknown>)[method] === 'function');
}

/** The names of the classes of `value`, its own first, up to Object: a subclass of ClientRMQ is told by ClientRMQ in its chain. */
export function classChain(value: object): string[] {
  const names: string[] = [];
  for (let proto = Object.getPrototypeOf(value) as object | null; proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof name === 'string' && name !== '') names.push(name);
  }
  return names;
}
