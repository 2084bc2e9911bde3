import { ClientProxyFactory, Transport, type ClientProxy, type ClientProviderOptions } from '@nestjs/microservices';
import { firstValueFrom, timeout } from 'rxjs';
import { MosquittoServer } from '../../test/kit/mosquitto.server.js';
import { NatsServer } from '../../test/kit/nats.server.js';
import { RedisServer } from '../../test/kit/redis.server.js';
import { now } from '../kit/stats.js';
import type { MicroserviceConnectionDefinition } from '../../lib/index.js';
import { AmqpBroker, timedKick } from './amqp.kind.js';
import type { DetectionKind, MonitoredConnection, Noticed, RawWatch } from './detection-kind.interface.js';
import { natsKick } from './nats.kind.js';

type Proxied = 'rmq' | 'redis' | 'mqtt' | 'nats';
const unique = () => `${process.pid}-${Math.random().toString(36).slice(2)}`;

/**
 * The options of Nest's ClientsModule.register() for a proxy reaching host:port. `fast`: as an app that wants
 * its library's own reconnect quick sets them (the library reconnects the proxy's connection, not the package):
 * RMQ heartbeat and reconnect 1 s and a 1 s handshake, Redis and MQTT a 1 s connect timeout, NATS reconnectTimeWait
 * and handshake 1 s (nats.js's 10 attempts kept: once it gives up, the package's connect() makes a new connection).
 * Otherwise Nest's and the libraries' defaults (RMQ heartbeat and reconnect 5 s; Redis no retryAttempts: the pair
 * is dropped at the first loss; MQTT keepalive 60 s, reconnectPeriod 1 s; NATS pingInterval 2 min, reconnectTimeWait
 * 2 s, handshake 20 s).
 */
function proxyOptions(transport: Proxied, host: string, port: number, fast: boolean): ClientProviderOptions {
  switch (transport) {
    case 'rmq':
      return {
        name: 'bench',
        transport: Transport.RMQ,
        options: {
          urls: [`amqp://guest:guest@${host}:${port}`],
          queue: `bench.${unique()}`,
          queueOptions: { durable: false, autoDelete: true },
          ...(fast ? { socketOptions: { heartbeatIntervalInSeconds: 1, reconnectTimeInSeconds: 1, connectionOptions: { timeout: 1_000 } } } : {}),
        },
      } as ClientProviderOptions;
    case 'redis':
      return { name: 'bench', transport: Transport.REDIS, options: { host, port, ...(fast ? { connectTimeout: 1_000 } : {}) } } as ClientProviderOptions;
    case 'mqtt':
      return { name: 'bench', transport: Transport.MQTT, options: { url: `mqtt://${host}:${port}`, ...(fast ? { connectTimeout: 1_000 } : {}) } } as ClientProviderOptions;
    case 'nats':
      return { name: 'bench', transport: Transport.NATS, options: { servers: [`nats://${host}:${port}`], ...(fast ? { reconnectTimeWait: 1_000, timeout: 1_000 } : {}) } } as ClientProviderOptions;
  }
}

const createProxy = (transport: Proxied, host: string, port: number, fast: boolean) =>
  ClientProxyFactory.create(proxyOptions(transport, host, port, fast) as never) as unknown as ClientProxy;

/**
 * close() waits for the server's answer (RMQ close-ok, Redis QUIT): bounded, for a blackholed one. Two traps of
 * Nest 12.1's ClientRMQ: its ChannelWrapper has no 'error' listener, so a close while it sets its channel up
 * again after a loss throws "Channel ended" out of the process; and its close() awaits the channel's close
 * before its manager's, which on a dead connection never comes, leaving the manager to redial for ever (the
 * bench process then never exits). So the bench listens for the first and closes the manager itself.
 */
async function closeProxy(client: ClientProxy): Promise<void> {
  const rmq = client as unknown as { channel?: { on?(event: string, listener: () => void): void }; client?: { close?(): Promise<unknown> } | null };
  rmq.channel?.on?.('error', () => undefined);
  const manager = rmq.client;
  await Promise.race([Promise.resolve(client.close()).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
  // Its retries end at once; the close itself waits on the dead connection, so it is not awaited.
  void manager?.close?.().catch(() => undefined);
}

/** The app's ClientProxy, handed in as `client`: the package connects it (its connect()), and never closes it. */
function watchedProxy(transport: Proxied) {
  return (host: string, port: number): MonitoredConnection => {
    const client = createProxy(transport, host, port, true);
    return {
      definition: { name: 'orders', kind: 'microservice', client } satisfies MicroserviceConnectionDefinition,
      dispose: () => closeProxy(client),
    };
  };
}

/**
 * A ClientProxy alone, with Nest's and its library's defaults, connected as Nest's docs say (`await
 * client.connect()`) and emitting an event every second as an app would. A report is the first `status`
 * other than 'connected' (RMQ 'disconnected', Redis 'reconnecting' or 'disconnected', MQTT 'closed' or
 * 'reconnecting', NATS 'disconnected' or 'reconnecting'), or an emit() that fails (they fail at once while the connection is known lost).
 */
function watchRawProxy(transport: Proxied) {
  return async (host: string, port: number): Promise<RawWatch> => {
    let report!: (how: string) => void;
    const noticed = new Promise<Noticed>((resolve) => (report = (how) => resolve({ at: now(), how })));
    const client = createProxy(transport, host, port, false);
    await client.connect();
    const status = client.status.subscribe((value) => value !== 'connected' && report(`status '${String(value)}'`));
    const emits = setInterval(() => {
      // An emit() into a blackhole may hang (RMQ confirm, Redis PUBLISH): only a rejection within 5 s counts.
      firstValueFrom(client.emit('bench.tick', now()).pipe(timeout(5_000)), { defaultValue: undefined }).catch((error: Error) => {
        if (error?.name !== 'TimeoutError') report(`emit() rejected: ${String(error?.message ?? error)}`);
      });
    }, 1_000);
    return {
      noticed,
      close: async () => {
        clearInterval(emits);
        status.unsubscribe();
        await closeProxy(client);
      },
    };
  };
}

const RAW_USAGE = "Nest's defaults, connect() once, then emit() every second; reported: the first status other than 'connected', or an emit() that rejects";

export const rabbitMqMicroserviceKind: DetectionKind<AmqpBroker> = {
  label: 'RabbitMQ 3.10 · Nest ClientRMQ (microservice, heartbeat and reconnect 1 s)',
  server: 'RabbitMQ 3.10 (AMQP 0-9-1)',
  startServer: () => AmqpBroker.start(),
  connection: watchedProxy('rmq'),
  raw: [{ name: 'ClientRMQ (@nestjs/microservices 12.1)', usage: RAW_USAGE, watch: watchRawProxy('rmq') }],
  kick: { how: 'rabbitmqctl close_all_connections', run: timedKick },
};

export const redisMicroserviceKind: DetectionKind<RedisServer> = {
  label: 'redis-server 7.0 · Nest ClientRedis (microservice, no retryAttempts)',
  server: 'redis-server 7.0',
  startServer: () => RedisServer.start(),
  connection: watchedProxy('redis'),
  raw: [{ name: 'ClientRedis (@nestjs/microservices 12.1)', usage: RAW_USAGE, watch: watchRawProxy('redis') }],
  kick: { how: 'CLIENT KILL', run: (server) => server.clientKill() },
};

export const mosquittoMicroserviceKind: DetectionKind<MosquittoServer> = {
  label: 'mosquitto 2.0 · Nest ClientMqtt (microservice)',
  server: 'mosquitto 2.0',
  startServer: () => MosquittoServer.start(),
  connection: watchedProxy('mqtt'),
  raw: [{ name: 'ClientMqtt (@nestjs/microservices 12.1)', usage: RAW_USAGE, watch: watchRawProxy('mqtt') }],
  kick: { how: 'session takeover', run: (server) => server.kickAll() },
};

export const natsMicroserviceKind: DetectionKind<NatsServer> = {
  label: 'nats-server 2.9 · Nest ClientNats (microservice, reconnectTimeWait 1 s)',
  server: 'nats-server 2.9',
  startServer: () => NatsServer.start(),
  connection: watchedProxy('nats'),
  raw: [{ name: 'ClientNats (@nestjs/microservices 12.1)', usage: RAW_USAGE, watch: watchRawProxy('nats') }],
  kick: natsKick,
};
