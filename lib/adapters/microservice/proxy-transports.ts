import type { ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import type { MonitorOptions } from '../../core/monitor-options.js';
import { amqpKind } from '../amqp/amqp.kind.js';
import type { AmqpConnectionManagerLike } from '../amqp/amqp-like.js';
import type { AdapterContext } from '../connection-kind.js';
import { mqttKind } from '../mqtt/mqtt.kind.js';
import type { MqttClientLike } from '../mqtt/mqtt-like.js';
import { natsKind } from '../nats/nats.kind.js';
import type { NatsConnectionLike } from '../nats/nats-like.js';
import type { RedisLike } from '../redis/redis-like.js';
import { RedisPairAdapter } from './redis-pair.adapter.js';

/** The options a ClientProxy keeps (`this.options` on every transport of Nest 11 and 12). */
export type ProxyOptions = { readonly [option: string]: unknown } | undefined;

/**
 * How the package watches the connection under one of Nest's transports: the kind that knows its client
 * library, and what of `unwrap()` that kind watches. The adapter is that kind's own, built by its create()
 * on a watched definition, so its beat, its judging of a late flow and its loss events are the kind's.
 */
export interface ProxyTransport {
  /** Nest's `Transport` name, for messages and the README. */
  readonly transport: string;
  /** The ClientProxy class of the transport: a proxy whose class chain holds it is of this transport. */
  readonly proxyClass: string;
  /** What the kind watches, of what `unwrap()` returned; a new object means a new connection to watch. */
  watched(unwrapped: unknown): object;
  /** The kind's adapter, watching `watched` (never closing it). */
  adapter(watching: Watching, options: MonitorOptions, context: AdapterContext): ConnectionAdapter;
  /** Where the proxy points, from its options, without credentials. */
  target(options: ProxyOptions, proxy: object): string | undefined;
}

/** One connection under a proxy, as the kind's adapter is made for it. */
export interface Watching {
  /** The connection's name in the package. */
  readonly name: string;
  /** What the kind watches, of `unwrapped`. */
  readonly watched: object;
  /** All that `unwrap()` returned with it. */
  readonly unwrapped: unknown;
  readonly proxy: object;
}

/** The transports whose connection the package can prove, by their ClientProxy class. */
export const PROXY_TRANSPORTS: readonly ProxyTransport[] = [
  {
    // unwrap(): the AmqpConnectionManager, the same object while it redials by itself.
    transport: 'RMQ',
    proxyClass: 'ClientRMQ',
    watched: (manager) => manager as object,
    adapter: ({ name, watched }, options, context) =>
      amqpKind.create({ name, kind: 'amqp', connection: watched as AmqpConnectionManagerLike }, options, context),
    target: (options) => {
      const urls = options?.urls;
      return urlTarget(Array.isArray(urls) && urls.length > 0 ? urls[0] : 'amqp://localhost', 5672);
    },
  },
  {
    // unwrap(): a new [pub, sub] array per call, the same two clients while ioredis keeps them. The pub client
    // tells a new pair; both are beaten (the sub carries send()'s replies), and a socket of theirs is ended only
    // while the end of the pair would reject nothing unhandled (RedisPairAdapter).
    transport: 'REDIS',
    proxyClass: 'ClientRedis',
    watched: (pair) => (pair as readonly object[])[0]!,
    adapter: ({ watched, unwrapped, proxy }) => new RedisPairAdapter(watched as RedisLike, (unwrapped as readonly RedisLike[])[1]!, proxy),
    target: (options) => (options?.path === undefined ? `${String(options?.host ?? 'localhost')}:${String(options?.port ?? 6379)}` : String(options.path)),
  },
  {
    // unwrap(): the MqttClient, the same object while it reconnects by itself (reconnectPeriod).
    transport: 'MQTT',
    proxyClass: 'ClientMqtt',
    watched: (client) => client as object,
    adapter: ({ name, watched }, options, context) => mqttKind.create({ name, kind: 'mqtt', client: watched as MqttClientLike }, options, context),
    target: (options, proxy) => {
      const host = options?.hostname ?? options?.host;
      if (typeof host === 'string') return `${host}:${String(options?.port ?? 1883)}`;
      return urlTarget((proxy as { url?: unknown }).url ?? 'mqtt://localhost:1883', 1883);
    },
  },
  {
    // unwrap(): the nats.js connection (3.x on Nest 12, 2.x on Nest 11), the same object while nats.js
    // reconnects it. Once nats.js gives up, unwrap() throws and the next connect() makes a new one.
    transport: 'NATS',
    proxyClass: 'ClientNats',
    watched: (connection) => connection as object,
    adapter: ({ name, watched }, options, context) => natsKind.create({ name, kind: 'nats', connection: watched as NatsConnectionLike }, options, context),
    target: (options) => {
      const servers = options?.servers ?? options?.url;
      const first = Array.isArray(servers) ? servers[0] : servers;
      // nats.js takes 'host:port' without a scheme as well.
      const server = typeof first === 'string' ? (first.includes('://') ? first : `nats://${first}`) : 'nats://localhost:4222';
      return urlTarget(server, 4222);
    },
  },
];

/** `host:port` of a URL (or of amqplib's URL object), never its credentials. */
function urlTarget(url: unknown, defaultPort: number): string | undefined {
  if (typeof url === 'object' && url !== null) {
    const { hostname, port } = url as { hostname?: unknown; port?: unknown };
    return `${String(hostname ?? 'localhost')}:${String(port ?? defaultPort)}`;
  }
  if (typeof url !== 'string') return undefined;
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || defaultPort}`;
  } catch {
    return undefined;
  }
}
