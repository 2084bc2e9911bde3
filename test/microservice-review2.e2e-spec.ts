/**
 * Second hostile review of the microservice kind: what the package does to the app's ClientProxy that the app
 * would not have had without it. Each test states the app's expectation; a failure is a finding.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { ClientProxy, ClientProxyFactory, ClientsModule, Transport, type ClientProviderOptions } from '@nestjs/microservices';
import { firstValueFrom, timeout } from 'rxjs';
import type { ConnectionDefinition } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import type { NatsServer } from './kit/nats.server.js';
import type { RedisServer } from './kit/redis.server.js';
import { sharedNats, sharedRedis } from './kit/shared-servers.js';
import { TestApp } from './kit/test-app.js';

const timing = {
  heartbeat: { intervalMs: 1_000, timeoutMs: 600, connectTimeoutMs: 2_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: Infinity },
};
const microservice = (name: string, client: unknown) => ({ name, kind: 'microservice', client, ...timing }) as unknown as ConnectionDefinition;

/** Whether the proxy holds a connection object now (unwrap() throws 'Not initialized' before connect() and once closed). */
function holdsConnection(client: ClientProxy): boolean {
  try {
    client.unwrap();
    return true;
  } catch {
    return false;
  }
}

const unhandled: string[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(String((reason as Error)?.message ?? reason));
before(() => process.on('unhandledRejection', onUnhandled));
after(() => process.off('unhandledRejection', onUnhandled));

let redis: RedisServer;
let nats: NatsServer;
before(async () => {
  redis = await sharedRedis();
  nats = await sharedNats();
});

const redisOptions = (token: string, proxy: ChaosProxy) =>
  ({ name: token, transport: Transport.REDIS, options: { host: proxy.host, port: proxy.port, connectTimeout: 2_000 } }) as ClientProviderOptions;

describe('review 2: a ClientProxy the app closed while it held no connection', () => {
  it('Redis (Nest defaults): the pair dropped at a loss, then the app closes its proxy: the package does not connect it again', async (t) => {
    const chaos = await ChaosProxy.start(redis.host, redis.port);
    const app = await TestApp.start({
      imports: [ClientsModule.register([redisOptions('REDIS', chaos)])],
      health: { shutdown: { timeoutMs: 1_000 }, connections: [microservice('redis', 'REDIS')] },
    });
    const client = app.app.get<ClientProxy>('REDIS');
    try {
      await app.waitFor('redis', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
      // The server restarts (here: the flows reset, new ones refused): ClientRedis with no retryAttempts drops its pair.
      chaos.refuse();
      chaos.reset();
      await app.waitFor('redis', (s) => s.state !== 'up', 10_000);
      await sleep(500);
      assert.equal(holdsConnection(client), false, 'ClientRedis dropped its pair at the loss');
      // The app is done with this client (a feature switched off, a tenant removed, its own shutdown step).
      await client.close();
      chaos.pass();
      await sleep(5_000);
      t.diagnostic(`${JSON.stringify(app.snapshot('redis'))}; connections through the proxy: ${chaos.connectionCount}`);
      assert.equal(holdsConnection(client), false, 'the package connected again a ClientProxy the app had closed (a new ClientRedis pair)');
    } finally {
      await app.close();
      await client.close().catch(() => undefined);
      await chaos.close();
    }
  });

  it('Redis, a ClientProxyFactory proxy a service closes in onModuleDestroy while the server is away: after app.close() no connection of it is left', async (t) => {
    const chaos = await ChaosProxy.start(redis.host, redis.port);
    @Injectable()
    class Publisher implements OnModuleDestroy {
      constructor(@Inject('REDIS') readonly client: ClientProxy) {}
      async onModuleDestroy(): Promise<void> {
        await this.client.close();
      }
    }
    // In the app's root module: Nest destroys the nearest modules first, so its onModuleDestroy runs before the package's.
    const app = await TestApp.start({
      providers: [{ provide: 'REDIS', useFactory: () => ClientProxyFactory.create(redisOptions('REDIS', chaos) as never) }, Publisher],
      health: { shutdown: { timeoutMs: 1_000, drainDelayMs: 3_000 }, connections: [microservice('redis', 'REDIS')] },
    });
    const client = app.app.get(Publisher, { strict: false }).client;
    try {
      await app.waitFor('redis', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
      chaos.refuse();
      chaos.reset();
      await app.waitFor('redis', (s) => s.state !== 'up', 10_000);
      await sleep(500);
      // SIGTERM while Redis is away; it comes back during the drain delay (load balancers still being told).
      const closing = app.close();
      await sleep(500);
      chaos.pass();
      await closing;
      await sleep(1_000);
      t.diagnostic(`connections through the proxy: ${chaos.connectionCount}`);
      assert.equal(holdsConnection(client), false, 'after app.close() the ClientProxy the app closed holds a new pair (the package called connect() while draining): two sockets nothing will close');
    } finally {
      await client.close().catch(() => undefined);
      await chaos.close();
    }
  });
});

describe('review 2: a NATS connection lost, read as closed by the app', () => {
  it('ClientNats with reconnect: false, the server ends the connection (FIN): the package connects the proxy again and reads up, as the app\'s next emit() would', async (t) => {
    const chaos = await ChaosProxy.start(nats.host, nats.port);
    const options = {
      name: 'NATS',
      transport: Transport.NATS,
      options: { servers: [`nats://${chaos.host}:${chaos.port}`], timeout: 2_000, reconnect: false },
    } as ClientProviderOptions;
    const app = await TestApp.start({
      imports: [ClientsModule.register([options])],
      health: { shutdown: { timeoutMs: 1_000 }, connections: [microservice('nats', 'NATS')] },
    });
    const client = app.app.get<ClientProxy>('NATS');
    try {
      await app.waitFor('nats', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
      // A server restart or a load balancer's idle close: a clean FIN, no socket error.
      chaos.fin();
      await app.waitFor('nats', (s) => s.state !== 'up', 10_000);
      // Many attempts of the engine (backoff 100-500 ms); the server is reachable all along.
      const snapshot = await app.waitFor('nats', (s) => s.state === 'up', 10_000).catch(() => app.snapshot('nats'));
      t.diagnostic(`${JSON.stringify(snapshot)}; holds a connection: ${holdsConnection(client)}`);
      assert.equal(snapshot.state, 'up', `the package reads the proxy ${snapshot.state} for ever (${snapshot.lastError}): it took the loss for the app's close() and never calls connect()`);
      // Without the package, the app's next emit() connects the proxy again at once.
      await firstValueFrom(client.emit('ms-review2.ping', 1).pipe(timeout(5_000)));
    } finally {
      await app.close();
      await client.close().catch(() => undefined);
      await chaos.close();
    }
  });
});

// ioredis emits 'close' on process.nextTick, after its closeHandler reset manuallyClosing: the Redis entry's owner-close
// test reads false for ClientRedis' own close() (MQTT and NATS pass: they are here as the cleared half).
describe('review 2: Redis, MQTT and NATS proxies the app closes while connected stay closed', () => {
  it('the app closes each connected proxy at run time: the package connects none of them again', async (t) => {
    const mosquitto = await (await import('./kit/shared-servers.js')).sharedMosquitto();
    const options = [
      { name: 'REDIS', transport: Transport.REDIS, options: { host: redis.host, port: redis.port, connectTimeout: 2_000 } },
      { name: 'MQTT', transport: Transport.MQTT, options: { url: `mqtt://${mosquitto.host}:${mosquitto.port}` } },
      { name: 'NATS', transport: Transport.NATS, options: { servers: [`nats://${nats.host}:${nats.port}`], timeout: 2_000 } },
    ] as ClientProviderOptions[];
    const app = await TestApp.start({
      imports: [ClientsModule.register(options)],
      health: { shutdown: { timeoutMs: 1_000 }, connections: options.map(({ name }) => microservice(String(name).toLowerCase(), name)) },
    });
    const clients = options.map(({ name }) => app.app.get<ClientProxy>(name as string));
    try {
      for (const { name } of options) await app.waitFor(String(name).toLowerCase(), (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
      await Promise.all(clients.map((client) => client.close()));
      await sleep(4_000);
      const held = options.filter((_, i) => holdsConnection(clients[i]!)).map(({ name }) => name);
      t.diagnostic(JSON.stringify(options.map(({ name }) => app.snapshot(String(name).toLowerCase()).reason)));
      assert.deepEqual(held, [], 'proxies the app closed were connected again by the package');
    } finally {
      await app.close();
      for (const client of clients) await client.close().catch(() => undefined);
    }
  });
});
