import { connect as natsConnect } from '@nats-io/transport-node';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import type { MosquittoServer } from './mosquitto.server.js';
import type { NatsServer } from './nats.server.js';
import type { RabbitMqServer } from './rabbitmq.server.js';
import type { RedisServer } from './redis.server.js';
import { sharedMosquitto, sharedNats, sharedRabbitMq, sharedRedis } from './shared-servers.js';

/** The transports of Nest's ClientProxy that the microservice kind proves. */
export type ProxyTransportName = 'rmq' | 'redis' | 'mqtt' | 'nats';
export const PROXY_TRANSPORT_NAMES: readonly ProxyTransportName[] = ['rmq', 'redis', 'mqtt', 'nats'];

/** The real server behind each transport: the suite's shared RabbitMQ, redis-server, mosquitto and nats-server. */
export interface ProxyTransportServers {
  rabbit: RabbitMqServer;
  redis: RedisServer;
  mosquitto: MosquittoServer;
  nats: NatsServer;
}

export async function proxyTransportServers(): Promise<ProxyTransportServers> {
  return { rabbit: await sharedRabbitMq(), redis: await sharedRedis(), mosquitto: await sharedMosquitto(), nats: await sharedNats() };
}

/** The server behind a transport, to kill and start again. */
export function serverOf(servers: ProxyTransportServers, name: ProxyTransportName): { kill(): Promise<unknown>; startAgain(): Promise<unknown>; isRunning(): boolean } {
  return { rmq: servers.rabbit, redis: servers.redis, mqtt: servers.mosquitto, nats: servers.nats }[name];
}

/** host and port of the server behind a transport (RabbitMQ's AMQP port). */
export function addressOf(servers: ProxyTransportServers, name: ProxyTransportName): readonly [string, number] {
  const server = { rmq: { host: servers.rabbit.host, port: servers.rabbit.amqpPort }, redis: servers.redis, mqtt: servers.mosquitto, nats: servers.nats }[name];
  return [server.host, server.port];
}

/** What a proxy's emit() reaches: RMQ's queue, the pattern (a channel, a topic, a subject) of the others. */
export interface EmitTarget {
  queue: string;
  pattern: string;
}

/**
 * A raw subscriber of the real server (not through a chaos proxy), recording every payload a proxy's emit()
 * put where `target` says: the proof that a message went through, whatever the proxy or the package says.
 */
export async function rawSubscriber(servers: ProxyTransportServers, name: ProxyTransportName, target: EmitTarget): Promise<{ received: string[]; close(): Promise<void> }> {
  const received: string[] = [];
  const record = (payload: Buffer | string) => received.push(payload.toString());
  switch (name) {
    case 'rmq': {
      const model = await amqp.connect(servers.rabbit.amqpUrl, { clientProperties: { connection_name: 'test-consumer' } });
      model.on('error', () => undefined);
      const channel = await model.createChannel();
      channel.on('error', () => undefined);
      await channel.assertQueue(target.queue, { durable: false });
      await channel.consume(target.queue, (message) => message && record(message.content), { noAck: true });
      return { received, close: () => model.close().catch(() => undefined) };
    }
    case 'redis': {
      const subscriber = new Redis({ host: servers.redis.host, port: servers.redis.port, lazyConnect: true, retryStrategy: () => null });
      subscriber.on('error', () => undefined);
      await subscriber.connect();
      subscriber.on('message', (_channel: string, message: string) => record(message));
      await subscriber.subscribe(target.pattern);
      return { received, close: async () => void subscriber.disconnect() };
    }
    case 'mqtt': {
      const subscriber = await mqtt.connectAsync(servers.mosquitto.url, { reconnectPeriod: 0, connectTimeout: 2_000 });
      subscriber.on('error', () => undefined);
      subscriber.on('message', (_topic, payload) => record(payload));
      await subscriber.subscribeAsync(target.pattern, { qos: 1 });
      return { received, close: () => subscriber.endAsync(true).then(() => undefined) };
    }
    case 'nats': {
      const subscriber = await natsConnect({ servers: servers.nats.url, reconnect: false, timeout: 2_000 });
      subscriber.subscribe(target.pattern, { callback: (error, message) => void (error || record(message.string())) });
      await subscriber.flush();
      return { received, close: () => subscriber.close().catch(() => undefined) };
    }
  }
}
