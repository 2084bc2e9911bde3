/**
 * Hostile review of the microservice kind: what the package does to the app's ClientProxy that the app
 * would not have had without it. Each test states the app's expectation; a failure is a finding.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { ClientProxy, ClientProxyFactory, ClientsModule, Transport, type ClientProviderOptions } from '@nestjs/microservices';
import { firstValueFrom, timeout } from 'rxjs';
import type { ConnectionDefinition } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import type { RabbitMqServer } from './kit/rabbitmq.server.js';
import type { RedisServer } from './kit/redis.server.js';
import { sharedRabbitMq, sharedRedis } from './kit/shared-servers.js';
import { Redis } from 'ioredis';
import { TestApp } from './kit/test-app.js';

const timing = {
  heartbeat: { intervalMs: 1_000, timeoutMs: 600, connectTimeoutMs: 2_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: Infinity },
};
const microservice = (name: string, client: unknown) => ({ name, kind: 'microservice', client, ...timing }) as unknown as ConnectionDefinition;
const unique = () => randomBytes(4).toString('hex');

/** Whether the proxy holds a connection object now (unwrap() throws 'Not initialized' once closed). */
function holdsConnection(client: ClientProxy): boolean {
  try {
    client.unwrap();
    return true;
  } catch {
    return false;
  }
}

function rmqOptions(token: string, proxy: ChaosProxy, id: string, credentials = 'guest:guest'): ClientProviderOptions {
  return {
    name: token,
    transport: Transport.RMQ,
    options: {
      urls: [`amqp://${credentials}@${proxy.host}:${proxy.port}`],
      queue: `ms-review.${id}`,
      queueOptions: { durable: false },
      socketOptions: { heartbeatIntervalInSeconds: 1, reconnectTimeInSeconds: 1, connectionOptions: { timeout: 2_000, clientProperties: { connection_name: `ms-review-${id}` } } },
    },
  } as ClientProviderOptions;
}

/** The broker's connections named `ms-review-<id>` (the app's ClientRMQ sets that name). */
async function brokerConnections(rabbit: RabbitMqServer, id: string): Promise<number> {
  const out = await rabbit.ctl(['list_connections', 'client_properties', '--no-table-headers', '--quiet']);
  return String(out).split('\n').filter((line) => line.includes(`ms-review-${id}`)).length;
}

let rabbit: RabbitMqServer;
let redis: RedisServer;
before(async () => {
  rabbit = await sharedRabbitMq();
  redis = await sharedRedis();
});

const unhandled: string[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(String((reason as Error)?.message ?? reason));
before(() => process.on('unhandledRejection', onUnhandled));
after(() => process.off('unhandledRejection', onUnhandled));

describe('review: a ClientProxy the app closed stays closed', () => {
  it('the app closes its RMQ ClientProxy at run time: the package does not connect it again', async () => {
    const id = unique();
    const chaos = await ChaosProxy.start(rabbit.host, rabbit.amqpPort);
    const app = await TestApp.start({
      imports: [ClientsModule.register([rmqOptions('RMQ', chaos, id)])],
      health: { shutdown: { timeoutMs: 1_000 }, connections: [microservice('rmq', 'RMQ')] },
    });
    const client = app.app.get<ClientProxy>('RMQ');
    try {
      await app.waitFor('rmq', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
      // The app is done with this client (a feature switched off, a tenant removed, its own shutdown step).
      await client.close();
      assert.equal(holdsConnection(client), false, 'closed by the app');
      await sleep(5_000);
      assert.equal(holdsConnection(client), false, 'the package connected again a ClientProxy the app had closed');
      assert.equal(await brokerConnections(rabbit, id), 0, 'no connection of that client left on the broker');
    } finally {
      await app.close();
      await client.close();
      await chaos.close();
    }
  });

  it('a service closes its RMQ ClientProxy (ClientProxyFactory.create, no ClientsModule) in onModuleDestroy, before the package drains: after app.close() no connection of it is left', async () => {
    const id = unique();
    const chaos = await ChaosProxy.start(rabbit.host, rabbit.amqpPort);
    @Injectable()
    class Publisher implements OnModuleDestroy {
      constructor(@Inject('RMQ') readonly client: ClientProxy) {}
      async onModuleDestroy(): Promise<void> {
        await this.client.close();
      }
    }
    // In the app's root module: Nest destroys the nearest modules first, so its onModuleDestroy runs before the package's.
    const app = await TestApp.start({
      // No ClientsModule: its onApplicationShutdown would close the proxy once more after the package's drain.
      providers: [{ provide: 'RMQ', useFactory: () => ClientProxyFactory.create(rmqOptions('RMQ', chaos, id) as never) }, Publisher],
      health: { shutdown: { timeoutMs: 1_000, drainDelayMs: 3_000 }, connections: [microservice('rmq', 'RMQ')] },
    });
    const client = app.app.get(Publisher, { strict: false }).client;
    try {
      await app.waitFor('rmq', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
      await app.close();
      await sleep(1_000);
      assert.equal(holdsConnection(client), false, 'after app.close() the ClientProxy the app closed holds a connection again (the package called connect() while draining)');
      assert.equal(await brokerConnections(rabbit, id), 0, 'no connection of that client left on the broker after app.close()');
    } finally {
      await client.close();
      await chaos.close();
    }
  });
});

describe('review: the Redis pub socket dropped by the package', () => {
  // ClientRedis ends its pair when one socket ends: it fails a send() awaiting its reply, whose cleanup UNSUBSCRIBEs
  // with no catch, and the ended clients reject what they hold. The review's repro had a send() waiting: the
  // package's drop of the pub socket ended the pair and that UNSUBSCRIBE rejected unhandled (a Nest app exits).
  // Such commands on a dead flow reject inside ClientRedis whenever its socket ends, with or without the package
  // (seen here at teardown), so what is the package's is whether it ends a socket while they are there.

  /** A ClientRedis through a chaos proxy, monitored by the package, up. */
  async function redisApp() {
    const chaos = await ChaosProxy.start(redis.host, redis.port);
    const options = { name: 'REDIS', transport: Transport.REDIS, options: { host: chaos.host, port: chaos.port, connectTimeout: 2_000 } } as ClientProviderOptions;
    const app = await TestApp.start({
      imports: [ClientsModule.register([options])],
      health: { shutdown: { timeoutMs: 1_000 }, connections: [microservice('redis', 'REDIS')] },
    });
    const client = app.app.get<ClientProxy>('REDIS');
    await app.waitFor('redis', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
    const [pub, sub] = client.unwrap<[Redis, Redis]>();
    // Both sockets stay silent for minutes after a forget(), and ClientsModule's close() would wait for its QUIT as
    // long: the chaos proxy ends them first.
    const close = async () => {
      await chaos.close();
      await app.close();
      await client.close().catch(() => undefined);
    };
    return { chaos, app, client, pub, sub, close };
  }

  /** Whether the proxy still holds `pub` and `sub`, both sockets open. */
  function pairKept(client: ClientProxy, pub: Redis, sub: Redis): boolean {
    const pair = holdsConnection(client) ? client.unwrap<[Redis, Redis]>() : undefined;
    return pair?.[0] === pub && pair[1] === sub && pub.stream?.destroyed === false && sub.stream?.destroyed === false;
  }

  it('a NAT forgets the flows while a send() awaits its reply, then after it timed out: the package reads the proxy down and ends neither socket of ClientRedis (no unhandled rejection)', async (t) => {
    const { chaos, app, client, pub, sub, close } = await redisApp();
    try {
      // A send() nobody answers: subscribed to its reply channel and published before the fault, so it awaits its reply.
      const pending = client.send(`ms-review.nobody.${unique()}`, [1, 2]).subscribe({ error: () => undefined });
      await sleep(500);
      unhandled.length = 0;
      chaos.forget();
      await app.waitFor('redis', (s) => s.state !== 'up', 10_000);
      // Several attempts of the engine (backoff 100-500 ms): the old code dropped the pub socket at the first.
      await sleep(6_000);
      t.diagnostic(`a send() awaiting: ${JSON.stringify(app.snapshot('redis'))}; unhandled: ${JSON.stringify(unhandled)}`);
      assert.ok(pairKept(client, pub, sub), `the package ended a socket of ClientRedis' pair while a send() awaited its reply (pub socket destroyed: ${pub.stream?.destroyed})`);
      assert.notEqual(app.snapshot('redis').state, 'up', 'both flows are dead: the proxy reads down');
      // The app gives up on it (its timeout): ClientRedis' cleanup queues an UNSUBSCRIBE with no catch on the dead sub flow.
      pending.unsubscribe();
      await sleep(5_000);
      t.diagnostic(`the send() given up: ${JSON.stringify(app.snapshot('redis'))}; unhandled: ${JSON.stringify(unhandled)}`);
      assert.ok(pairKept(client, pub, sub), "the package ended a socket of ClientRedis' pair while its UNSUBSCRIBE (no catch) waited on the sub");
      assert.notEqual(app.snapshot('redis').state, 'up');
      assert.deepEqual(unhandled, []);
      // ClientRedis' own trap, which this test is not about: that UNSUBSCRIBE rejects unhandled when the teardown ends the socket.
      for (const queued of (sub as unknown as { commandQueue: { toArray(): { command: { promise: Promise<unknown> } }[] } }).commandQueue.toArray()) {
        queued.command.promise.catch(() => undefined);
      }
    } finally {
      await close();
    }
  });

  it('a NAT forgets the flows while nothing awaits a reply (emit()s only): the package ends the dead pub socket, and the new pair its connect() makes reads up, with no unhandled rejection', async (t) => {
    const { chaos, app, client, pub, close } = await redisApp();
    try {
      await firstValueFrom(client.emit('ms-review.sum', [1, 2]));
      unhandled.length = 0;
      chaos.forget();
      await app.waitFor('redis', (s) => s.state !== 'up', 10_000);
      await app.waitFor('redis', (s) => s.state === 'up', 20_000);
      t.diagnostic(`recovered: ${JSON.stringify(app.snapshot('redis'))}`);
      assert.notEqual(client.unwrap<[Redis, Redis]>()[0], pub, 'a new pair under the proxy');
      await firstValueFrom(client.emit('ms-review.sum', [3, 4]).pipe(timeout(5_000)));
      assert.deepEqual(unhandled, []);
    } finally {
      await close();
    }
  });
});

describe('review: the amqp beat on the app\'s RabbitMQ connection', () => {
  it('a broker user allowed to configure only the app\'s own queues (least privilege): the app\'s ClientRMQ works, so the package reads it up', async (t) => {
    const id = unique();
    const user = `ms-review-${id}`;
    await rabbit.ctl(['add_user', user, 'pw-review']);
    // Configure only queues named ms-review.*; write and read anywhere: enough for ClientRMQ (its queue, direct reply-to).
    await rabbit.ctl(['set_permissions', '-p', '/', user, '^ms-review\\..*', '.*', '.*']);
    const chaos = await ChaosProxy.start(rabbit.host, rabbit.amqpPort);
    const app = await TestApp.start({
      imports: [ClientsModule.register([rmqOptions('RMQ', chaos, id, `${user}:pw-review`)])],
      health: { shutdown: { timeoutMs: 1_000 }, connections: [microservice('rmq', 'RMQ')] },
    });
    const client = app.app.get<ClientProxy>('RMQ');
    try {
      // The app's own use of the proxy works under these permissions.
      await client.connect();
      await firstValueFrom(client.emit(`ms-review.${id}`, { ok: true }));
      await sleep(6_000);
      const snapshot = app.snapshot('rmq');
      t.diagnostic(JSON.stringify(snapshot));
      assert.equal(snapshot.state, 'up', `the app's ClientRMQ connects and emits, yet the package reads it ${snapshot.state}: ${snapshot.lastError}`);
    } finally {
      await app.close();
      await chaos.close();
      await rabbit.ctl(['delete_user', user]).catch(() => undefined);
    }
  });
});

describe('review: the package\'s connect() calls while Redis is unreachable', () => {
  it('each attempt of the package makes and drops a ClientRedis pair: no unhandled rejection comes of it', async (t) => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const options = { name: 'REDIS', transport: Transport.REDIS, options: { host: '127.0.0.1', port, connectTimeout: 2_000 } } as ClientProviderOptions;
    unhandled.length = 0;
    const app = await TestApp.start({
      imports: [ClientsModule.register([options])],
      health: { shutdown: { timeoutMs: 1_000 }, connections: [microservice('redis', 'REDIS')] },
    });
    try {
      const snapshot = await app.waitFor('redis', (s) => s.reconnectAttempts >= 5, 20_000);
      t.diagnostic(`${snapshot.reconnectAttempts} attempts, last error ${snapshot.lastError}; unhandled: ${JSON.stringify(unhandled)}`);
      assert.deepEqual(unhandled, []);
    } finally {
      await app.close();
    }
  });
});

describe('review: ClientRedis with retryAttempts, its flows forgotten', () => {
  it('both flows forgotten, nothing awaiting a reply: the package ends both dead sockets, ioredis dials again, and it reads up only once the sub client (it carries send()\'s replies) answers too', async (t) => {
    const id = unique();
    const pattern = `ms-review.sum.${id}`;
    // A raw responder on the real server (not through the chaos proxy), as a Nest Redis microservice answers.
    const responder = new Redis({ host: redis.host, port: redis.port, lazyConnect: true });
    const replier = new Redis({ host: redis.host, port: redis.port, lazyConnect: true });
    for (const c of [responder, replier]) c.on('error', () => undefined);
    await responder.connect();
    await replier.connect();
    responder.on('message', (_channel: string, raw: string) => {
      const { id: requestId, data } = JSON.parse(raw) as { id: string; data: number[] };
      void replier.publish(`${pattern}.reply`, JSON.stringify({ id: requestId, response: data.reduce((a, b) => a + b, 0), isDisposed: true }));
    });
    await responder.subscribe(pattern);
    const chaos = await ChaosProxy.start(redis.host, redis.port);
    const options = {
      name: 'REDIS',
      transport: Transport.REDIS,
      options: { host: chaos.host, port: chaos.port, connectTimeout: 2_000, retryAttempts: 100, retryDelay: 500 },
    } as ClientProviderOptions;
    const app = await TestApp.start({
      imports: [ClientsModule.register([options])],
      health: { shutdown: { timeoutMs: 1_000 }, connections: [microservice('redis', 'REDIS')] },
    });
    const client = app.app.get<ClientProxy>('REDIS');
    try {
      await app.waitFor('redis', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
      assert.equal(await firstValueFrom(client.send(pattern, [1, 2]).pipe(timeout(5_000))), 3, 'a send() answered before the fault');
      // The answered send()'s UNSUBSCRIBE answered too: one lost on the dead flow rejects unhandled in ClientRedis when the socket ends.
      await sleep(500);
      const [pub, sub] = client.unwrap<[Redis, Redis]>();
      chaos.forget();
      await app.waitFor('redis', (s) => s.state !== 'up', 10_000);
      t.diagnostic('down');
      // Nothing awaits a reply: the package may end both dead sockets, and ioredis dials them again (retryAttempts).
      await app.waitFor('redis', (s) => s.state === 'up', 20_000);
      t.diagnostic(`up again: pub ${pub.status}, sub ${sub.status}: ${JSON.stringify(app.snapshot('redis'))}`);
      const pong = await Promise.race([sub.ping().catch((error: Error) => error.message), sleep(3_000).then(() => 'no PONG in 3 s')]);
      assert.equal(pong, 'PONG', "read up, so the sub client that carries send()'s replies answers");
      assert.equal(await firstValueFrom(client.send(pattern, [3, 4]).pipe(timeout(5_000))), 7, 'a send() answered after the recovery');
      // Its UNSUBSCRIBE answered before the teardown ends the sockets (else ClientRedis rejects it unhandled).
      await sleep(500);
    } finally {
      // The chaos proxy first: a QUIT on a forgotten flow would wait for ever.
      await chaos.close();
      await app.close();
      await client.close().catch(() => undefined);
      responder.disconnect();
      replier.disconnect();
    }
  });
});
