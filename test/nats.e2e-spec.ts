/**
 * The NATS kind end to end: a real Nest app, real nats-servers (private to this file, so killing one disturbs
 * no other file), real faults. Five usages: the package's own connection (servers) with a declared
 * subscription, the app's nats.js connection that subscribed itself, and the app's connection with a declared
 * subscription in a queue group; the two of the app's once made by nats.js 2.x (`nats`) and once by 3.x
 * (`@nats-io/transport-node`, as Nest 12's ClientNats holds). Each reaches the server through its own chaos proxy. Every fault must read
 * each usage down within intervalMs + timeoutMs (at once when nats.js sees the loss itself), up again once it
 * is lifted, and a message published after recovery must reach every subscription.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import { connect as connect3 } from '@nats-io/transport-node';
import { connect, StringCodec, type ConnectionOptions, type NatsConnection } from 'nats';
import { MonitorConnection } from '../lib/index.js';
import type { ConnectionDefinition, MonitorConnectionOptions } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { NatsServer } from './kit/nats.server.js';
import { StateLog, waitUntil } from './kit/state-log.js';
import { activeHandles, leakedHandles, TestApp } from './kit/test-app.js';
import { RecordingLogger } from './kit/recording-logger.js';

// Detection bound under test: intervalMs + timeoutMs (failureThreshold 1), plus jitter and a generous margin
// for a busy 2-core machine.
const INTERVAL_MS = 500;
const TIMEOUT_MS = 300;
const BOUND_MS = INTERVAL_MS + TIMEOUT_MS;
const MARGIN_MS = 1_700;
/** Up again, and each subscription fed, within this once the fault is lifted. */
const RECOVER_MS = 10_000;
const SHUTDOWN_MS = 1_000;
const timing = {
  // The connect deadline leaves a slow flow (SLOW_MS each way) time to answer the PING that judges it.
  heartbeat: { intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, connectTimeoutMs: 2_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: Infinity },
};
const now = () => performance.timeOrigin + performance.now();
const unique = () => randomBytes(4).toString('hex');
const codec = StringCodec();

/** The definitions are built as plain objects: the kind is checked at bootstrap, as an app's config is. */
const natsConnection = (definition: Record<string, unknown>) => ({ kind: 'nats', ...timing, ...definition }) as unknown as ConnectionDefinition;

/**
 * The app's nats.js connection: it never gives up, redials soon, and gives up a handshake lost in a blackhole
 * after a few seconds (nats.js's default is 20 s). A redial may land inside the kit's kick window (a client
 * whose last dial is older than reconnectTimeWait dials at once): without ignoreAuthErrorAbort, nats.js would
 * close for good on that second Authorization Violation of its life.
 */
function appConnection(servers: string, options: ConnectionOptions = {}, library: Library = 'nats'): Promise<NatsConnection> {
  const all = { servers, reconnectTimeWait: 250, maxReconnectAttempts: -1, timeout: 3_000, ignoreAuthErrorAbort: true, ...options };
  // A 3.x connection has every method these tests call on a 2.x one (subscribe, status, isClosed, close, ...).
  return library === 'nats' ? connect(all) : (connect3(all as Parameters<typeof connect3>[0]) as unknown as Promise<NatsConnection>);
}

/** The library that makes an app's connection: nats.js 2.x, or 3.x (Nest 12's NATS transport). */
type Library = 'nats' | '@nats-io/transport-node';
const LIBRARIES: readonly Library[] = ['nats', '@nats-io/transport-node'];
/** The major version a library's connections send in CONNECT (nats-server's connz `version`). */
const MAJOR: Record<Library, string> = { nats: '2', '@nats-io/transport-node': '3' };

/** Publishes one message straight to the server (not through a proxy), from a short-lived connection. */
async function publish(server: NatsServer, subject: string, payload: string, options: ConnectionOptions = {}): Promise<void> {
  const publisher = await connect({ servers: server.url, name: `e2e-publisher-${unique()}`, ...options });
  try {
    publisher.publish(subject, codec.encode(payload));
    await publisher.flush();
  } finally {
    await publisher.close();
  }
}

/** Publishes until `received` holds the payload: a subscription made again after a reconnect may lag the CONNECT by a round trip. */
async function deliversAgain(server: NatsServer, subject: string, received: string[], what: string, options: ConnectionOptions = {}): Promise<void> {
  const payload = `${what} ${unique()}`;
  await waitUntil(
    async () => {
      if (received.includes(payload)) return true;
      await publish(server, subject, payload, options);
      await sleep(200);
      return received.includes(payload);
    },
    RECOVER_MS,
    `${what}: a message published after recovery arrives`,
  );
}

/** Counts the 'reconnect' status events of a connection (nats.js 2.x never ends the iterator, 3.x only on close: stop() does). */
function reconnectsOf(connection: NatsConnection): { count: number; stop(): void } {
  const iterator = connection.status() as AsyncIterable<{ type: string }> & { stop(): void };
  const counter = { count: 0, stop: () => iterator.stop() };
  void (async () => {
    for await (const status of iterator) if (status.type === 'reconnect') counter.count += 1;
  })();
  return counter;
}

/** The server's connections of that name (the connection name nats.js sends in CONNECT). */
async function named(server: NatsServer, name: string) {
  return (await server.connections()).filter((one) => one.name === name);
}

type Usage = 'own' | 'app' | 'queue' | 'app-3x' | 'queue-3x';
const USAGES: readonly Usage[] = ['own', 'app', 'queue', 'app-3x', 'queue-3x'];
/** The library of a usage's connection (the package's own: nats 2.x, installed here). */
const libraryOf = (usage: Usage): Library => (usage.endsWith('-3x') ? '@nats-io/transport-node' : 'nats');

/** One usage: its proxy, its connection's name, its subscription's subject and what reached it. */
interface UsageSetup {
  readonly usage: Usage;
  readonly proxy: ChaosProxy;
  /** The name its connection gives the server (the package names its own after the definition). */
  readonly connectionName: string;
  readonly subject: string;
  readonly received: string[];
  /** The app's connection (undefined for `own`, whose connection is the package's). */
  connection?: NatsConnection;
  reconnects?: { count: number; stop(): void };
}

interface Fault {
  readonly title: string;
  /** The loss is silent (no FIN, no RST): only the heartbeat can notice it, within the bound. */
  readonly silent: boolean;
  /** The app's connection sees the loss on its socket: the reason names the server it was on. */
  readonly namesServer?: boolean;
  /** The flow lives on, only slower: the connection must be kept, never dropped and dialled again. */
  readonly keepsConnection?: boolean;
  inject(server: NatsServer, usages: readonly UsageSetup[]): Promise<void>;
  clear(server: NatsServer, usages: readonly UsageSetup[]): Promise<void>;
}

const SLOW_MS = TIMEOUT_MS + 100;
const proxies = (usages: readonly UsageSetup[]) => usages.map((u) => u.proxy);

const FAULTS: readonly Fault[] = [
  {
    title: 'kill -9 of nats-server',
    silent: false,
    namesServer: true,
    inject: (server) => server.kill(),
    clear: (server) => server.startAgain(),
  },
  {
    title: 'RST (chaos proxy reset)',
    silent: false,
    namesServer: true,
    inject: async (_server, usages) => proxies(usages).forEach((p) => p.reset()),
    clear: async () => undefined,
  },
  {
    title: 'silent blackhole (chaos proxy swallows every byte)',
    silent: true,
    inject: async (_server, usages) => proxies(usages).forEach((p) => p.blackhole()),
    // Held a few beats more, so that attempts into the blackhole (a handshake that never answers) are lived through too.
    clear: async (_server, usages) => {
      await sleep(2 * INTERVAL_MS);
      proxies(usages).forEach((p) => p.pass());
    },
  },
  {
    title: `slow (proxy latency ${SLOW_MS} ms each way, above the ${TIMEOUT_MS} ms deadline)`,
    silent: true,
    keepsConnection: true,
    inject: async (_server, usages) => proxies(usages).forEach((p) => p.latency(SLOW_MS)),
    clear: async (_server, usages) => {
      await sleep(3 * INTERVAL_MS);
      proxies(usages).forEach((p) => p.pass());
    },
  },
  {
    title: 'kick (authorization revoked by a reload)',
    silent: false,
    inject: async (server) => void (await server.kick()),
    // The connections redial by themselves (app) or through the engine (own): nothing to lift.
    clear: async () => undefined,
  },
];

describe("NATS kind: the package's connection, the app's connection and a queue subscription on it, each through a chaos proxy", () => {
  let server: NatsServer;
  let app: TestApp;
  let log: StateLog;
  const usages: UsageSetup[] = [];
  const byUsage = (usage: Usage) => usages.find((u) => u.usage === usage)!;

  before(async () => {
    server = await NatsServer.start();
    const run = unique();
    for (const usage of USAGES) {
      const proxy = await ChaosProxy.start(server.host, server.port);
      const connectionName = usage === 'own' ? 'own' : `e2e-${usage}-${run}`;
      usages.push({ usage, proxy, connectionName, subject: `e2e.${run}.${usage}`, received: [] });
    }
    for (const u of usages.filter((one) => one.usage !== 'own')) {
      u.connection = await appConnection(`nats://${u.proxy.host}:${u.proxy.port}`, { name: u.connectionName }, libraryOf(u.usage));
      if (u.usage.startsWith('app')) u.connection.subscribe(u.subject, { callback: (error, message) => !error && u.received.push(message.string()) });
    }
    const own = byUsage('own');
    const queueGroup = (usage: Usage) => {
      const queue = byUsage(usage);
      return natsConnection({
        name: usage,
        connection: queue.connection,
        subscriptions: [{ subject: queue.subject, queue: 'workers', onMessage: (message: { string(): string }) => queue.received.push(message.string()) }],
      });
    };
    app = await TestApp.start({
      health: {
        shutdown: { timeoutMs: SHUTDOWN_MS },
        connections: [
          natsConnection({
            name: 'own',
            servers: `nats://${own.proxy.host}:${own.proxy.port}`,
            subscriptions: [{ subject: own.subject, onMessage: (message: { string(): string }) => own.received.push(message.string()) }],
          }),
          natsConnection({ name: 'app', connection: byUsage('app').connection }),
          queueGroup('queue'),
          natsConnection({ name: 'app-3x', connection: byUsage('app-3x').connection }),
          queueGroup('queue-3x'),
        ],
      },
    });
    log = new StateLog(app, USAGES);
    for (const usage of USAGES) await app.waitFor(usage, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
    for (const u of usages) if (u.connection) u.reconnects = reconnectsOf(u.connection);
    const versions = await server.connections();
    for (const u of usages) {
      const [held] = versions.filter((c) => c.name === u.connectionName);
      assert.equal(held?.version?.split('.')[0], MAJOR[libraryOf(u.usage)], `${u.usage}: made by ${libraryOf(u.usage)}`);
    }
  });

  after(async () => {
    log?.stop();
    await app?.close();
    for (const u of usages) {
      u.reconnects?.stop();
      await u.connection?.close();
    }
    for (const u of usages) await u.proxy.close();
    await server?.stop();
  });

  it('a healthy server for 12 intervals: never down, no reconnect, the same connections', async (t) => {
    const since = now();
    const cids = await Promise.all(usages.map(async (u) => (await named(server, u.connectionName)).map((c) => c.cid)));
    const reconnectsBefore = usages.map((u) => u.reconnects?.count ?? 0);
    await sleep(12 * INTERVAL_MS);
    for (const usage of USAGES) {
      const beats = log.beats(usage, since).length;
      t.diagnostic(`${usage}: ${beats} beats, states ${log.states(usage, since).join(' ') || '(none)'}`);
      assert.ok(beats >= 8, `${usage}: beats went on (${beats})`);
      assert.deepEqual(log.states(usage, since), [], `${usage}: no transition`);
      assert.equal(app.snapshot(usage).state, 'up');
      assert.equal(app.snapshot(usage).reconnectAttempts, 0);
    }
    assert.deepEqual(usages.map((u) => u.reconnects?.count ?? 0), reconnectsBefore, "the app's connections never reconnected");
    assert.deepEqual(await Promise.all(usages.map(async (u) => (await named(server, u.connectionName)).map((c) => c.cid))), cids, 'the server holds the same connections');
    for (const cid of cids) assert.equal(cid.length, 1);
  });

  for (const fault of FAULTS) {
    it(`${fault.title}: every usage down within the bound, up again, its subscription fed`, (t) => runFault(t, fault));
  }

  it('after the faults: exactly one connection per usage, no side connection left', async (t) => {
    await waitUntil(
      async () => {
        const connections = await server.connections();
        return usages.every((u) => connections.filter((c) => c.name === u.connectionName).length === 1) && connections.every((c) => usages.some((u) => u.connectionName === c.name));
      },
      5_000,
      'one connection per usage',
    );
    const connections = await server.connections();
    t.diagnostic(`the server holds: ${connections.map((c) => `${c.name} (${c.subscriptions} subs)`).join(', ')}`);
    assert.deepEqual(connections.map((c) => c.name).sort(), usages.map((u) => u.connectionName).sort());
  });

  async function runFault(t: TestContext, fault: Fault): Promise<void> {
    // Settled first: the fault before may have left a reconnect of its own in flight.
    for (const usage of USAGES) await app.waitFor(usage, (s) => s.state === 'up', RECOVER_MS);
    await sleep(2 * INTERVAL_MS);
    const cidsBefore = new Map(await Promise.all(usages.map(async (u) => [u.usage, (await named(server, u.connectionName)).map((c) => c.cid)] as const)));
    const reconnectsBefore = new Map(usages.map((u) => [u.usage, u.reconnects?.count ?? 0]));
    const faultAt = now();
    await fault.inject(server, usages);
    const failures: string[] = [];
    const downAt = new Map<Usage, number>();
    for (const usage of USAGES) {
      try {
        const elapsed = await log.waitFor(usage, 'down', faultAt, BOUND_MS + MARGIN_MS + 5_000);
        const down = log.first(usage, 'down', faultAt)!;
        downAt.set(usage, down.at);
        t.diagnostic(`${fault.title} · ${usage}: down after ${elapsed} ms (bound ${BOUND_MS} ms): ${down.reason}`);
        assert.ok(elapsed <= BOUND_MS + MARGIN_MS, `down after ${elapsed} ms, bound ${BOUND_MS} + margin ${MARGIN_MS} ms`);
        if (!fault.silent) assert.ok(elapsed <= MARGIN_MS, `a loss nats.js sees itself is read at once, not at the next beat: ${elapsed} ms`);
        const u = byUsage(usage);
        // The app's connections (the package's own closes on its first loss, which says no server).
        if (fault.namesServer && u.connection) assert.ok(down.reason?.includes(`${u.proxy.host}:${u.proxy.port}`), `the reason names the server the connection was on: ${down.reason}`);
      } catch (error) {
        failures.push(`${usage}: ${(error as Error).message}`);
      }
    }
    const clearedAt = now();
    await fault.clear(server, usages);
    for (const u of usages) {
      try {
        const since = downAt.get(u.usage) ?? faultAt;
        await log.waitFor(u.usage, 'up', since, RECOVER_MS + Math.max(0, clearedAt - since)).catch((error: Error) => {
          const { state, reason, lastError, reconnectAttempts } = app.snapshot(u.usage);
          throw new Error(`${error.message}; ${JSON.stringify({ state, reason, lastError, reconnectAttempts, closed: u.connection?.isClosed() })}`);
        });
        const reconnects = (u.reconnects?.count ?? 0) - (reconnectsBefore.get(u.usage) ?? 0);
        const cids = (await named(server, u.connectionName)).map((c) => c.cid);
        t.diagnostic(
          `${fault.title} · ${u.usage}: up ${Math.round(log.first(u.usage, 'up', since)!.at - clearedAt)} ms after the fault was lifted; ` +
            `connection ${cidsBefore.get(u.usage)?.join(',')} -> ${cids.join(',')}${u.connection ? `, ${reconnects} nats.js reconnect(s)` : ''}`,
        );
        // A slow flow answers, late: it keeps its connection and the messages in flight on it.
        if (fault.keepsConnection) {
          assert.deepEqual(cids, cidsBefore.get(u.usage), 'a slow flow is never dropped: the server holds the same connection');
          assert.equal(reconnects, 0, "a slow flow costs the app's connection no reconnect");
        }
        if (u.connection) assert.equal(app.registry.get(u.usage).client(), u.connection, "the handle gives the app's connection itself");
        await deliversAgain(server, u.subject, u.received, `${fault.title} · ${u.usage}`);
      } catch (error) {
        failures.push(`${u.usage}: ${(error as Error).message}`);
      }
    }
    assert.deepEqual(failures, [], 'every usage reads down within the bound, up again after, and its subscription is fed');
  }
});

describe('NATS kind: subscriptions (a server with users and subscribe permissions)', () => {
  let server: NatsServer;
  const service = { user: 'service', pass: 'service-pass-5150' };
  const publisher = { user: 'publisher', pass: 'publisher-pass-2112' };
  before(async () => {
    server = await NatsServer.start({
      auth: { users: { [service.user]: service.pass, [publisher.user]: publisher.pass } },
      denySubscribe: { [service.user]: ['secret.>'] },
    });
  });
  after(async () => server?.stop());
  const asService = () => ({ servers: server.url, natsOptions: { ...service } });

  it('an onMessage that throws is logged (core NATS: at most once), crashes nothing, and the next message is still delivered; msg.respond() answers a request', async () => {
    const subject = `jobs.${unique()}`;
    const rpc = `rpc.${unique()}`;
    const delivered: string[] = [];
    const logger = new RecordingLogger();
    const app = await TestApp.start({
      logger,
      health: {
        connections: [
          natsConnection({
            name: 'jobs',
            ...asService(),
            subscriptions: [
              {
                subject,
                onMessage: (message: { string(): string }) => {
                  delivered.push(message.string());
                  if (message.string() === 'poison') throw new Error('cannot parse the poison message');
                },
              },
              { subject: rpc, queue: 'responders', onMessage: (message: { string(): string; respond(data: Uint8Array): boolean }) => message.respond(codec.encode(`answer to ${message.string()}`)) },
            ],
          }),
        ],
      },
    });
    const requester = await connect({ servers: server.url, ...publisher });
    try {
      await app.waitFor('jobs', (s) => s.state === 'up', 10_000);
      await publish(server, subject, 'poison', publisher);
      await publish(server, subject, 'next', publisher);
      await waitUntil(() => delivered.includes('next'), 5_000, 'the message after the poison one arrives');
      assert.deepEqual(delivered, ['poison', 'next']);
      const failure = logger.lines.find((l) => /cannot parse the poison message/.test(l.message));
      assert.ok(failure, `the failure is logged: ${JSON.stringify(logger.lines)}`);
      assert.ok(failure.message.includes(`'${subject}'`), `the log names the subject: ${failure.message}`);
      assert.match(failure.message, /at most once/);
      assert.equal(app.snapshot('jobs').state, 'up');
      const answer = await requester.request(rpc, codec.encode('question 42'), { timeout: 3_000 });
      assert.equal(answer.string(), 'answer to question 42');
    } finally {
      await requester.close();
      await app.close();
    }
  });

  // On the package's own connection, and on the app's 3.x one (whose refusal is a PermissionViolationError, not 2.x's permissionContext).
  for (const on of ['own', '@nats-io/transport-node'] as const) it(`a subscription the server refuses (permissions) reads degraded naming its subject; up once the permission is granted, on the same connection (${on === 'own' ? "the package's own" : `the app's ${on}`} connection)`, async (t) => {
    const allowed = `jobs.${unique()}`;
    const refused = `secret.${unique()}`;
    const delivered: string[] = [];
    const watched = on === 'own' ? undefined : await appConnection(server.url, { ...service, name: 'refused' }, on);
    const app = await TestApp.start({
      health: {
        connections: [
          natsConnection({
            name: 'refused',
            ...(watched ? { connection: watched } : asService()),
            subscriptions: [
              { subject: allowed, onMessage: () => undefined },
              { subject: refused, onMessage: (message: { string(): string }) => delivered.push(message.string()) },
            ],
          }),
        ],
      },
    });
    const log = new StateLog(app, ['refused']);
    try {
      const degraded = await app.waitFor('refused', (s) => s.state === 'degraded', 10_000);
      t.diagnostic(`degraded: ${degraded.reason}`);
      assert.ok(degraded.reason?.includes(`'${refused}'`), `the reason names the subject: ${degraded.reason}`);
      assert.ok(!degraded.reason?.includes(allowed), 'the granted one is not named');
      const cids = (await named(server, 'refused')).map((c) => c.cid);
      await sleep(3 * INTERVAL_MS);
      assert.equal(app.snapshot('refused').state, 'degraded', 'still degraded while refused');
      assert.ok(!log.states('refused').includes('down'), `never down: ${log.states('refused').join(' ')}`);
      assert.equal(app.snapshot('refused').lastError, undefined, 'the refusal is no error of the connection');
      const allowedAt = now();
      await server.denySubscriptions(service.user, []);
      const upMs = await log.waitFor('refused', 'up', allowedAt, 5 * INTERVAL_MS + MARGIN_MS);
      t.diagnostic(`up ${upMs} ms after the server allowed it`);
      assert.ok(!log.states('refused', allowedAt).includes('down'), 'no reconnect needed');
      await deliversAgain(server, refused, delivered, 'the subscription granted late', publisher);
      assert.deepEqual((await named(server, 'refused')).map((c) => c.cid), cids, 'the same connection throughout');
    } finally {
      log.stop();
      await app.close();
      await watched?.close();
      await server.denySubscriptions(service.user, ['secret.>']);
    }
  });
});

describe('NATS kind: no harm on close, connections closed for good, decorators', () => {
  let server: NatsServer;
  before(async () => (server = await NatsServer.start()));
  after(async () => server?.stop());

  /** How many status iterators a nats.js connection feeds (its listeners: the app's and any the package left; 3.x keeps them on its protocol). */
  const statusListeners = (connection: NatsConnection) => {
    const { listeners, protocol } = connection as unknown as { listeners?: unknown[]; protocol: { listeners: unknown[] } };
    return (listeners ?? protocol.listeners).length;
  };

  for (const library of LIBRARIES) it(`app.close() leaves the app's ${library} connection open with its own subscription and status listeners only; the package's subscriptions run no handler after; its own connection leaves the server`, async () => {
    const own = `news.${unique()}`;
    const declared = `orders.${unique()}`;
    const owned = `owned.${unique()}`;
    const appName = `e2e-kept-${unique()}`;
    const connection = await appConnection(server.url, { name: appName }, library);
    const received: string[] = [];
    connection.subscribe(own, { callback: (error, message) => !error && received.push(message.string()) });
    const appReconnects = reconnectsOf(connection);
    const listenersBefore = statusListeners(connection);
    const handled: string[] = [];
    const app = await TestApp.start({
      health: {
        shutdown: { timeoutMs: SHUTDOWN_MS },
        connections: [
          natsConnection({ name: 'watched', connection, subscriptions: [{ subject: declared, onMessage: (m: { string(): string }) => handled.push(`declared ${m.string()}`) }] }),
          natsConnection({ name: 'owned', servers: server.url, subscriptions: [{ subject: owned, onMessage: (m: { string(): string }) => handled.push(`owned ${m.string()}`) }] }),
        ],
      },
    });
    try {
      for (const name of ['watched', 'owned']) await app.waitFor(name, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
      await publish(server, declared, 'before');
      await publish(server, owned, 'before');
      await waitUntil(() => handled.length === 2, 5_000, "the package's subscriptions deliver while it runs");
      assert.deepEqual((await named(server, appName)).map((c) => c.subscriptions), [2], "the app's own subscription and the declared one");
      assert.equal((await named(server, 'owned')).length, 1);
    } finally {
      await app.close();
    }
    try {
      assert.equal(connection.isClosed(), false, "the app's connection is not closed");
      assert.equal(connection.isDraining(), false, "nor draining");
      assert.equal(statusListeners(connection), listenersBefore, "no status iterator of the package's left on it");
      await waitUntil(async () => (await named(server, 'owned')).length === 0, 5_000, "the package's own connection left the server");
      assert.deepEqual((await named(server, appName)).map((c) => c.subscriptions), [1], "only the app's own subscription is left");
      await publish(server, declared, 'after');
      await deliversAgain(server, own, received, "the app's subscription after app.close()");
      assert.deepEqual(handled, ['declared before', 'owned before'], 'no handler of the package ran after app.close()');
      assert.equal(appReconnects.count, 0);
    } finally {
      appReconnects.stop();
      await connection.close();
    }
  });

  it('close while blackholed returns within the shutdown deadline and leaves no timer or socket', async (t) => {
    const baseline = activeHandles();
    const proxy = await ChaosProxy.start(server.host, server.port);
    const url = `nats://${proxy.host}:${proxy.port}`;
    const connection = await appConnection(url);
    const app = await TestApp.start({
      health: {
        shutdown: { timeoutMs: SHUTDOWN_MS },
        connections: [
          natsConnection({ name: 'watched', connection }),
          natsConnection({ name: 'owned', servers: url, subscriptions: [{ subject: `bh.${unique()}`, onMessage: () => undefined }] }),
        ],
      },
    });
    let closeMs = Infinity;
    try {
      for (const name of ['watched', 'owned']) await app.waitFor(name, (s) => s.state === 'up', 10_000);
      proxy.blackhole();
      const faultAt = now();
      for (const name of ['watched', 'owned']) await app.waitForState(name, 'down', BOUND_MS + MARGIN_MS, faultAt);
    } finally {
      const closeAt = now();
      await app.close();
      closeMs = Math.round(now() - closeAt);
      assert.equal(connection.isClosed(), false, "the app's connection is left to the app");
      await connection.close();
      await proxy.close();
    }
    t.diagnostic(`app.close() while blackholed: ${closeMs} ms (deadline ${SHUTDOWN_MS} ms)`);
    assert.ok(closeMs <= SHUTDOWN_MS + 1_000, `close took ${closeMs} ms`);
    await sleep(100);
    assert.deepEqual(leakedHandles(baseline), {}, 'no timer or socket left after app.close()');
  });

  it("the app's connection closed by the app reads down \"was closed\"; one nats.js gave up on reads down for good with the reason; neither is reopened", async (t) => {
    const doomed = await NatsServer.start();
    const closedByApp = await appConnection(server.url, { name: `e2e-closed-${unique()}` });
    const givenUp = await connect({ servers: doomed.url, name: `e2e-given-up-${unique()}`, reconnectTimeWait: 200, maxReconnectAttempts: 3 });
    const app = await TestApp.start({
      health: { connections: [natsConnection({ name: 'closed', connection: closedByApp }), natsConnection({ name: 'given-up', connection: givenUp })] },
    });
    const log = new StateLog(app, ['closed', 'given-up']);
    try {
      for (const name of ['closed', 'given-up']) await app.waitFor(name, (s) => s.state === 'up', 10_000);
      const at = now();
      await closedByApp.close();
      await doomed.kill();
      await waitUntil(() => givenUp.isClosed(), 10_000, 'nats.js gives up after 3 attempts');
      t.diagnostic(`nats.js gave up ${Math.round(now() - at)} ms after the kill`);
      await doomed.startAgain();
      for (const name of ['closed', 'given-up']) {
        const ms = await log.waitFor(name, 'down', at, MARGIN_MS);
        t.diagnostic(`${name}: down after ${ms} ms: ${log.first(name, 'down', at)!.reason}`);
      }
      await sleep(4 * INTERVAL_MS);
      for (const [name, why] of [['closed', /was closed \(close\(\) or drain\(\)\); the package never reopens/], ['given-up', /closed for good.*CONNECTION_REFUSED|CONNECTION_REFUSED.*closed for good/s]] as const) {
        const { state, reason, lastError } = app.snapshot(name);
        t.diagnostic(`${name} now ${state}: ${reason} / ${lastError}`);
        assert.match(`${reason} ${lastError ?? ''}`, why);
        if (name === 'given-up') assert.match(`${reason} ${lastError ?? ''}`, /maxReconnectAttempts: -1/, 'the reason says how to keep it');
        assert.ok(!log.states(name, at).includes('up'), `${name} never up again: ${log.states(name, at).join(' ')}`);
        assert.ok(['down', 'reconnecting', 'failed'].includes(state), state);
      }
      assert.ok(closedByApp.isClosed() && givenUp.isClosed(), 'the package reopened neither');
      assert.deepEqual(await doomed.connections(), [], 'nor opened a connection in its place');
    } finally {
      log.stop();
      await app.close();
      await doomed.stop();
    }
  });

  it('tls:// requires TLS: against a server without it, no CONNECT (so no password) ever goes out, and the reason says why (failed before: up in clear)', async (t) => {
    const proxy = await ChaosProxy.start(server.host, server.port, { record: true });
    const app = await TestApp.start({
      health: { connections: [natsConnection({ name: 'secure', servers: `tls://ops:planted-pass-${unique()}@${proxy.host}:${proxy.port}`, allowInsecureAuth: true })] },
    });
    try {
      await app.waitFor('secure', (s) => s.reconnectAttempts >= 2, 10_000);
      const { state, reason, lastError } = app.snapshot('secure');
      t.diagnostic(`${state}: ${reason} / ${lastError}`);
      assert.notEqual(state, 'up');
      assert.match(`${reason} ${lastError ?? ''}`, /tls/i);
      assert.doesNotMatch(proxy.clientBytes(), /CONNECT/, 'nothing but the TCP handshake went out');
    } finally {
      await app.close();
      await proxy.close();
    }
  });

  it("@MonitorConnection on a property holding the app's connection, and a provider token as `connection`: both up, handles give the connections, up again after an RST", async (t) => {
    const proxy = await ChaosProxy.start(server.host, server.port);
    const url = `nats://${proxy.host}:${proxy.port}`;
    const decoratedConnection = await appConnection(url);
    const byToken = await appConnection(url);
    let made = 0;
    @Injectable()
    class Events {
      @MonitorConnection({ name: 'decorated', kind: 'nats', ...timing } as unknown as MonitorConnectionOptions)
      readonly connection = decoratedConnection;

      constructor() {
        made += 1;
      }
    }
    let app: TestApp | undefined;
    let log: StateLog | undefined;
    try {
      app = await TestApp.start({
        providers: [Events, { provide: 'APP_NATS', useValue: byToken }],
        health: { connections: [natsConnection({ name: 'by-token', connection: 'APP_NATS' })] },
      });
      log = new StateLog(app, ['decorated', 'by-token']);
      for (const name of ['decorated', 'by-token']) await app.waitFor(name, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
      assert.equal(made, 1, 'the decorated provider was made once');
      assert.equal(app.registry.get('decorated').client(), decoratedConnection);
      assert.equal(app.registry.get('by-token').client(), byToken);
      const resetAt = now();
      proxy.reset();
      for (const name of ['decorated', 'by-token']) {
        const downMs = await log.waitFor(name, 'down', resetAt, MARGIN_MS);
        const upMs = await log.waitFor(name, 'up', log.first(name, 'down', resetAt)!.at, RECOVER_MS);
        t.diagnostic(`${name}: down ${downMs} ms after the RST, up ${upMs} ms later`);
      }
    } finally {
      log?.stop();
      await app?.close();
      await decoratedConnection.close();
      await byToken.close();
      await proxy.close();
    }
  });
});
