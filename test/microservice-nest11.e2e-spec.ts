/**
 * The microservice kind on Nest 11's real ClientProxy classes (@nestjs/microservices 11.2, CommonJS, with Nest 11's
 * @nestjs/common and nats 2.x), loaded from the installed Nest 11 matrix fixture beside this ESM suite that runs
 * Nest 12: the package gets them as plain objects, `{ kind: 'microservice', client: proxy }`. Each through a chaos
 * proxy of its own in front of the kit's real servers.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { firstValueFrom, timeout, type Observable } from 'rxjs';
import type { ConnectionDefinition } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { installedFixture } from './kit/packed-package.js';
import { addressOf, PROXY_TRANSPORT_NAMES, proxyTransportServers, rawSubscriber, type ProxyTransportName, type ProxyTransportServers } from './kit/proxy-transport-servers.js';
import { StateLog, waitUntil } from './kit/state-log.js';
import { TestApp } from './kit/test-app.js';

const timing = {
  heartbeat: { intervalMs: 1_000, timeoutMs: 600, connectTimeoutMs: 2_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: Infinity },
};
const microservice = (name: string, client: unknown) => ({ name, kind: 'microservice', client, ...timing }) as unknown as ConnectionDefinition;
const unique = () => randomBytes(4).toString('hex');
const now = () => performance.timeOrigin + performance.now();

/** What the test uses of a Nest 11 ClientProxy (its own types are Nest 11's, not importable here). */
interface Proxy11 {
  connect(): Promise<unknown>;
  close(): Promise<unknown>;
  unwrap<T>(): T;
  emit(pattern: string, data: unknown): Observable<unknown>;
  send(pattern: string, data: unknown): Observable<unknown>;
  readonly routingMap: Map<string, unknown>;
}

type Name = ProxyTransportName;
const NAMES = PROXY_TRANSPORT_NAMES;

/** Nest 11's ClientProxyFactory and Transport, from the Nest 11 app's own node_modules. */
let nest11: { create(options: { transport: number; options: object }): Proxy11; Transport: Record<string, number>; version: string };
let servers: ProxyTransportServers;

const unhandled: string[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(String((reason as Error)?.message ?? reason));
before(() => process.on('unhandledRejection', onUnhandled));
after(() => process.off('unhandledRejection', onUnhandled));

before(async () => {
  const fixture = await installedFixture('matrix/nest11-cjs/rows/ts5.9');
  const require11 = createRequire(path.join(fixture, 'package.json'));
  // The client and enums entries, not the package's index: this fixture row pins @nestjs/core ~11.1, whose
  // helpers lack safe-instance-decorator that 11.2's nest-microservice.js requires (the clients need only common).
  require11('reflect-metadata');
  const { ClientProxyFactory } = require11('@nestjs/microservices/client') as { ClientProxyFactory: { create(options: object): Proxy11 } };
  const { Transport } = require11('@nestjs/microservices/enums') as { Transport: Record<string, number> };
  // Nest 11's own static Logger: quiet unless asked (its clients log every loss as an error).
  if (!process.env.CH_TEST_LOGS) (require11('@nestjs/common') as { Logger: { overrideLogger(levels: false): void } }).Logger.overrideLogger(false);
  const version = (require11('@nestjs/microservices/package.json') as { version: string }).version;
  nest11 = { create: (options) => ClientProxyFactory.create(options), Transport, version };
  servers = await proxyTransportServers();
});

/** Whether the proxy holds a connection object now (unwrap() throws 'Not initialized' before connect() and once closed). */
function holdsConnection(client: Proxy11): boolean {
  try {
    client.unwrap();
    return true;
  } catch {
    return false;
  }
}

/** One Nest 11 proxy per transport, each through a chaos proxy of its own, with a fast app's settings. */
class Transports {
  readonly id = unique();
  readonly chaos = new Map<Name, ChaosProxy>();
  readonly clients = new Map<Name, Proxy11>();

  static async start(names: readonly Name[], extra: Partial<Record<Name, object>> = {}): Promise<Transports> {
    const transports = new Transports();
    for (const name of names) {
      const chaos = await ChaosProxy.start(...addressOf(servers, name));
      transports.chaos.set(name, chaos);
      transports.clients.set(name, nest11.create(transports.options(name, chaos, extra[name] ?? {})));
    }
    return transports;
  }

  get queue(): string {
    return `ms11.${this.id}`;
  }
  pattern(name: Name): string {
    return name === 'mqtt' ? `ms11/${this.id}` : `ms11.${this.id}`;
  }

  private options(name: Name, chaos: ChaosProxy, extra: object): { transport: number; options: object } {
    const { Transport } = nest11;
    switch (name) {
      case 'rmq':
        return {
          transport: Transport.RMQ!,
          options: { urls: [`amqp://guest:guest@${chaos.host}:${chaos.port}`], queue: this.queue, queueOptions: { durable: false }, socketOptions: { heartbeatIntervalInSeconds: 1, reconnectTimeInSeconds: 1, connectionOptions: { timeout: 2_000 } }, ...extra },
        };
      case 'redis':
        return { transport: Transport.REDIS!, options: { host: chaos.host, port: chaos.port, connectTimeout: 2_000, ...extra } };
      case 'mqtt':
        return { transport: Transport.MQTT!, options: { url: `mqtt://${chaos.host}:${chaos.port}`, connectTimeout: 2_000, ...extra } };
      case 'nats':
        return { transport: Transport.NATS!, options: { servers: [`nats://${chaos.host}:${chaos.port}`], timeout: 2_000, ...extra } };
    }
  }

  definitions(): ConnectionDefinition[] {
    return [...this.clients].map(([name, client]) => microservice(name, client));
  }

  async close(): Promise<void> {
    for (const client of this.clients.values()) await client.close().catch(() => undefined);
    for (const chaos of this.chaos.values()) await chaos.close();
  }
}

/** One emit() through the Nest 11 proxy, as the app makes it: resolves, or rejects with its error. */
const emitOnce = (client: Proxy11, pattern: string, body: string) => firstValueFrom(client.emit(pattern, body).pipe(timeout(3_000)), { defaultValue: undefined });

/** One emit() through the proxy (connected: no retry) must reach a raw subscriber of the server. */
async function emitReaches(transports: Transports, name: Name, what: string): Promise<void> {
  const body = `${what} ${unique()}`;
  const subscriber = await rawSubscriber(servers, name, { queue: transports.queue, pattern: transports.pattern(name) });
  try {
    await emitOnce(transports.clients.get(name)!, transports.pattern(name), body);
    await waitUntil(() => subscriber.received.some((payload) => payload.includes(body)), 5_000, `${name}: the emit() through the Nest 11 proxy reaches a raw subscriber (${what})`);
  } finally {
    await subscriber.close();
  }
}

describe(`microservice kind on Nest 11's ClientProxy classes`, () => {
  it('RMQ, REDIS, MQTT and NATS read up and emit() reaches a raw subscriber; after an RST each reads down, then up again, and emits again', async (t) => {
    assert.match(nest11.version, /^11\./, 'the proxies are Nest 11 ones');
    const transports = await Transports.start(NAMES);
    const app = await TestApp.start({ health: { shutdown: { timeoutMs: 1_000 }, connections: transports.definitions() } });
    const log = new StateLog(app, NAMES);
    try {
      for (const name of NAMES) {
        await app.waitFor(name, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
        assert.equal(app.snapshot(name).kind, 'microservice');
        await emitReaches(transports, name, 'first up');
      }
      const objects = new Map(NAMES.map((name) => [name, transports.clients.get(name)!.unwrap<unknown>()]));
      const resetAt = now();
      for (const chaos of transports.chaos.values()) chaos.reset();
      const downMs = await Promise.all(NAMES.map((name) => log.waitFor(name, 'down', resetAt, 10_000)));
      for (const name of NAMES) {
        await app.waitFor(name, (s) => s.state === 'up' && s.since > resetAt && s.lastBeatAt! > resetAt, 20_000);
        await emitReaches(transports, name, 'after the RST');
      }
      // Who reconnected: the same object (the library redialled it) or a new one (the package's connect()).
      const same = NAMES.map((name) => `${name} ${downMs[NAMES.indexOf(name)]} ms ${objects.get(name) === transports.clients.get(name)!.unwrap<unknown>() ? 'same' : 'new'}`);
      t.diagnostic(`down after the RST; object under the proxy after recovery: ${same.join(', ')}`);
      // Nest 11's ClientRedis without retryAttempts drops its pair at the RST: only the package's connect() made the new one.
      assert.notEqual(transports.clients.get('redis')!.unwrap<unknown[]>()[0], (objects.get('redis') as unknown[])[0], 'Redis: a new pair (the package connected the proxy again)');
    } finally {
      log.stop();
      await app.close();
      await transports.close();
    }
  });

  it('Redis without retryAttempts, a NAT forgets both flows while nothing awaits a reply: the package ends both sockets of the old pair and reads up on a new pair, with no unhandled rejection', async (t) => {
    const transports = await Transports.start(['redis']);
    const client = transports.clients.get('redis')!;
    const app = await TestApp.start({ health: { shutdown: { timeoutMs: 1_000 }, connections: transports.definitions() } });
    const unhandledBefore = unhandled.length;
    try {
      await app.waitFor('redis', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
      await emitReaches(transports, 'redis', 'before the NAT forgot');
      const [pub, sub] = client.unwrap<[Redis, Redis]>();
      const streams = [pub, sub].map((redis) => (redis as unknown as { stream: { destroyed: boolean } }).stream);
      assert.deepEqual(streams.map((stream) => stream.destroyed), [false, false]);
      assert.equal(client.routingMap.size, 0, 'no send() awaits a reply');
      const forgotAt = now();
      transports.chaos.get('redis')!.forget();
      await app.waitFor('redis', (s) => s.state === 'down', 10_000);
      await app.waitFor('redis', (s) => s.state === 'up' && s.since > forgotAt && s.lastBeatAt! > forgotAt, 20_000);
      const [newPub, newSub] = client.unwrap<[Redis, Redis]>();
      t.diagnostic(`up again ${Math.round(app.snapshot('redis').since - forgotAt)} ms after the NAT forgot; old pub/sub status ${pub.status}/${sub.status}`);
      assert.ok(newPub !== pub && newSub !== sub, 'a new pair under the proxy');
      // Nest 11 nulls the pair at the first 'end' without disconnecting the other client: the package must end both.
      assert.deepEqual(streams.map((stream) => stream.destroyed), [true, true], 'both sockets of the old pair destroyed (pub, sub)');
      assert.deepEqual([pub.status, sub.status], ['end', 'end'], 'both old clients ended (no redial)');
      await emitReaches(transports, 'redis', 'on the new pair');
      assert.deepEqual(unhandled.slice(unhandledBefore), [], 'no unhandled rejection');
    } finally {
      await app.close();
      await transports.close();
    }
  });

  it('Redis without retryAttempts, a NAT forgets the pub flow only: the package ends the dead pub and the live sub too (Nest 11 nulls the pair without closing the other), and reads up on a new pair', async (t) => {
    const transports = await Transports.start(['redis']);
    const client = transports.clients.get('redis')!;
    const app = await TestApp.start({ health: { shutdown: { timeoutMs: 1_000 }, connections: transports.definitions() } });
    const unhandledBefore = unhandled.length;
    try {
      await app.waitFor('redis', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
      const [pub, sub] = client.unwrap<[Redis, Redis]>();
      const streams = [pub, sub].map((redis) => (redis as unknown as { stream: { destroyed: boolean; localPort: number } }).stream);
      const forgotAt = now();
      transports.chaos.get('redis')!.forget(streams[0]!.localPort);
      await app.waitFor('redis', (s) => s.state === 'down', 10_000);
      await app.waitFor('redis', (s) => s.state === 'up' && s.since > forgotAt && s.lastBeatAt! > forgotAt, 20_000);
      await sleep(1_000); // an old client left open would stay so: give a late end the time it needs
      t.diagnostic(`up again ${Math.round(app.snapshot('redis').since - forgotAt)} ms after the NAT forgot the pub flow; old pub/sub status ${pub.status}/${sub.status}`);
      assert.notEqual(client.unwrap<Redis[]>()[0], pub, 'a new pair under the proxy');
      assert.deepEqual(streams.map((stream) => stream.destroyed), [true, true], 'both sockets of the old pair destroyed (pub, sub): a live sub nothing holds any more is a leaked connection');
      await emitReaches(transports, 'redis', 'on the new pair');
      assert.deepEqual(unhandled.slice(unhandledBefore), [], 'no unhandled rejection');
    } finally {
      await app.close();
      await transports.close();
    }
  });

  it('the app closes each connected Nest 11 proxy: the package never connects it again, and reads it down as closed by the app', async (t) => {
    const transports = await Transports.start(NAMES);
    const app = await TestApp.start({ health: { shutdown: { timeoutMs: 1_000 }, connections: transports.definitions() } });
    try {
      for (const name of NAMES) await app.waitFor(name, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
      await Promise.all(NAMES.map((name) => transports.clients.get(name)!.close()));
      await sleep(4_000);
      t.diagnostic(JSON.stringify(NAMES.map((name) => [name, app.snapshot(name).state, app.snapshot(name).reason])));
      assert.deepEqual(NAMES.filter((name) => holdsConnection(transports.clients.get(name)!)), [], 'proxies the app closed hold a connection again');
      for (const name of NAMES) {
        assert.equal(app.snapshot(name).state, 'down', name);
        assert.match(app.snapshot(name).reason, /the app closed its ClientProxy/, name);
      }
      // The chaos proxy counts the connections open through it now: the closed ones gone, no new one dialled.
      const open = NAMES.filter((name) => transports.chaos.get(name)!.connectionCount !== 0);
      assert.deepEqual(open, [], 'connections open through the chaos proxies after the close');
    } finally {
      await app.close();
      await transports.close();
    }
  });

  it('NATS: after nats.js gave up (server away longer than maxReconnectAttempts x reconnectTimeWait), Nest 11 keeps the dead connection: the package reads it down, and the proxy fails until the app closes it', async (t) => {
    const transports = await Transports.start(['nats'], { nats: { maxReconnectAttempts: 2, reconnectTimeWait: 500 } });
    const client = transports.clients.get('nats')!;
    const chaos = transports.chaos.get('nats')!;
    const app = await TestApp.start({ health: { shutdown: { timeoutMs: 1_000 }, connections: transports.definitions() } });
    try {
      await app.waitFor('nats', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
      const first = client.unwrap<{ isClosed(): boolean; closed(): Promise<unknown> }>();
      // The server away: the flow reset, every new dial refused, for longer than 2 attempts 500 ms apart.
      chaos.refuse();
      chaos.reset();
      await waitUntil(() => first.isClosed(), 10_000, 'nats.js gives up on the connection (its reconnect attempts run out)');
      const gaveUp = String(await first.closed());
      chaos.pass();
      await sleep(4_000); // the server is back: the package's attempts go on meanwhile
      const snapshot = app.snapshot('nats');
      const connectError = await client.connect().then(() => 'resolved', (error: unknown) => String((error as Error)?.message ?? error));
      const emitError = await emitOnce(client, transports.pattern('nats'), 'after the give-up').then(() => 'resolved', (error: unknown) => String((error as Error)?.message ?? error));
      const sendError = await firstValueFrom(client.send(transports.pattern('nats'), 'after the give-up').pipe(timeout(3_000))).then(() => 'resolved', (error: unknown) => String((error as Error)?.message ?? error));
      t.diagnostic(`nats.js: ${gaveUp}; package: ${snapshot.state} (${snapshot.reason}; ${snapshot.lastError}); connect(): ${connectError}; emit(): ${emitError}; send(): ${sendError}; attempts through the proxy after give-up: ${snapshot.reconnectAttempts}`);
      assert.equal(client.unwrap<unknown>(), first, 'Nest 11 keeps the connection nats.js gave up on (unwrap() returns it)');
      assert.equal(snapshot.state, 'down', 'the package reads it down');
      assert.match(connectError, /Connection lost/, "Nest 11's connect() fails with the cached rejection");
      assert.match(emitError, /Connection lost/, "Nest 11's emit() fails too");
      assert.match(sendError, /Connection lost/, "Nest 11's send() fails too");
      // Until the app closes the proxy: then its own connect() makes a new connection, which the package watches.
      await client.close();
      await client.connect();
      assert.notEqual(client.unwrap<unknown>(), first, 'a new connection after close() and connect()');
      await app.waitFor('nats', (s) => s.state === 'up', 10_000);
      await emitReaches(transports, 'nats', 'after the app closed and connected it again');
    } finally {
      await app.close();
      await transports.close();
    }
  });
});
