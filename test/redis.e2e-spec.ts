/**
 * The Redis kind end to end: a real Nest app, real redis-servers (private to this file, so killing one
 * disturbs no other file), real faults. Three usages of an app's ioredis client, as the raw baseline
 * (redis-raw-baseline.e2e-spec.ts) measures them: an idle client (plain commands now and then), a
 * subscriber (SUBSCRIBE mode) and a client blocked in `BLPOP key 0`. Where the baseline shows raw ioredis
 * hanging for ever (blackhole, slow, iptables DROP), the package must read the connection down within
 * intervalMs + timeoutMs and bring it back once the fault is lifted; where raw ioredis notices at once
 * (kill, RST, CLIENT KILL) it must follow at once and never get in the client's way.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import { MonitorConnection } from '../lib/index.js';
import type { ConnectionDefinition, ConnectionSnapshot } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { NetworkNamespace } from './kit/network-namespace.js';
import { RedisServer } from './kit/redis.server.js';
import { activeHandles, leakedHandles, TestApp } from './kit/test-app.js';
import { StateLog, waitUntil } from './kit/state-log.js';

// Detection bound under test: intervalMs + timeoutMs (failureThreshold 1), plus jitter and a generous margin
// for a busy 2-core machine.
const INTERVAL_MS = 500;
const TIMEOUT_MS = 300;
const BOUND_MS = INTERVAL_MS + TIMEOUT_MS;
const MARGIN_MS = 1_700;
/** Up again, and each usage working, within this once the fault is lifted. */
const RECOVER_MS = 10_000;
const timing = {
  heartbeat: { intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, connectTimeoutMs: 1_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: Infinity },
};
const now = () => performance.timeOrigin + performance.now();
const unique = () => randomBytes(4).toString('hex');

type Usage = 'idle' | 'subscriber' | 'blpop';
const USAGES: readonly Usage[] = ['idle', 'subscriber', 'blpop'];

/** The definitions are built as plain objects: the kind is checked at bootstrap, as an app's config is. */
const redisConnection = (definition: Record<string, unknown>) => ({ kind: 'redis', ...timing, ...definition }) as unknown as ConnectionDefinition;


/**
 * One ioredis client of the app, with default options (so its own retryStrategy reconnects it), used one way.
 * Its CLIENT SETNAME (connectionName) finds its connections in the server's CLIENT LIST.
 */
class AppClient {
  readonly name: string;
  readonly channel = `news-${unique()}`;
  readonly list = `jobs-${unique()}`;
  readonly client: Redis;
  readonly messages: string[] = [];
  /** Every 'close', 'reconnecting', 'end' and 'ready' of the client, with when. */
  readonly events: Array<{ name: string; at: number }> = [];
  /** The BLPOP sent once before any fault; it must take the item pushed after recovery. */
  popped: Promise<{ value?: unknown; error?: string }> | undefined;

  private constructor(
    readonly usage: Usage,
    host: string,
    port: number,
  ) {
    this.name = `app-${usage}-${unique()}`;
    this.client = new Redis({ host, port, connectionName: this.name, lazyConnect: true });
    for (const name of ['close', 'reconnecting', 'end', 'ready'] as const) this.client.on(name, () => this.events.push({ name, at: now() }));
    // An app has its own error listener; without one ioredis prints every reconnect error.
    this.client.on('error', () => undefined);
    this.client.on('message', (_channel: string, message: string) => this.messages.push(message));
  }

  static async connect(usage: Usage, host: string, port: number): Promise<AppClient> {
    const app = new AppClient(usage, host, port);
    await app.client.connect();
    if (usage === 'subscriber') await app.client.subscribe(app.channel);
    if (usage === 'blpop') {
      app.popped = app.client.blpop(app.list, 0).then(
        (value) => ({ value }),
        (error: Error) => ({ error: `${error.name}: ${error.message}` }),
      );
    }
    return app;
  }

  /** The events of the client since `since`, by name. */
  eventsSince(since: number): string[] {
    return this.events.filter((event) => event.at >= since).map((event) => event.name);
  }

  /** This client's connections on the server now. */
  async connections(server: RedisServer): Promise<Record<string, string>[]> {
    return (await server.clients()).filter((client) => client.name === this.name);
  }

  /**
   * After recovery the usage works again: SET/GET answer; a message published now reaches the subscription
   * (made again by ioredis on the new connection); the BLPOP sent before the fault takes an item pushed now.
   */
  async assertWorks(server: RedisServer, tag: string): Promise<void> {
    if (this.usage === 'idle') {
      await this.client.set(`key-${this.name}`, tag);
      assert.equal(await this.client.get(`key-${this.name}`), tag);
    } else if (this.usage === 'subscriber') {
      const body = `after ${tag}`;
      // The resubscribe may lag the reconnect by a round trip: publish until it arrives.
      await waitUntil(
        async () => {
          if (this.messages.includes(body)) return true;
          await server.command('PUBLISH', this.channel, body);
          return this.messages.includes(body);
        },
        RECOVER_MS,
        `${this.usage}: a message published after recovery arrives`,
      );
    } else {
      // ioredis re-sends the BLPOP on the new connection (autoResendUnfulfilledCommands). Push only once the
      // server holds exactly one blocked connection of this client: a second one (an old connection the
      // server still believes in) would take the item first (blocked clients are served oldest first).
      await waitUntil(
        async () => (await this.connections(server)).filter((c) => c.cmd === 'blpop').length === 1,
        RECOVER_MS,
        `${this.usage}: the server holds exactly one BLPOP of this client`,
      );
      await server.command('RPUSH', this.list, tag);
      const outcome = await Promise.race([this.popped!, sleep(RECOVER_MS).then(() => ({ error: 'still pending' }))]);
      assert.deepEqual(outcome, { value: [this.list, tag] }, `${this.usage}: the BLPOP sent before the fault takes the item pushed after recovery`);
    }
  }

  /** What an app does at its own shutdown; the package never does it for a watched client. */
  close(): void {
    this.client.disconnect();
  }
}

/** A Nest app watching the given clients, one connection each, named after its usage. */
async function startApp(clients: readonly AppClient[], extra: Partial<Record<string, unknown>> = {}): Promise<{ app: TestApp; log: StateLog }> {
  const app = await TestApp.start({
    health: {
      shutdown: { timeoutMs: 1_000 },
      connections: clients.map((c) => redisConnection({ name: c.usage, client: c.client, ...extra })),
    },
  });
  const log = new StateLog(app, clients.map((c) => c.usage));
  try {
    for (const c of clients) await app.waitFor(c.usage, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
  } catch (error) {
    log.stop();
    await app.close();
    throw error;
  }
  return { app, log };
}

/** Collects the failures of several usages, so that one test reports all of them. */
async function eachUsage(clients: readonly AppClient[], check: (c: AppClient) => Promise<void>): Promise<string[]> {
  const outcomes = await Promise.allSettled(clients.map(check));
  return outcomes.flatMap((outcome, i) => (outcome.status === 'rejected' ? [`${clients[i]!.usage}: ${(outcome.reason as Error).message}`] : []));
}

interface Fault {
  readonly title: string;
  /** Where the clients connect: straight to the server, through a chaos proxy, or to a server in a network namespace. */
  readonly via: 'server' | 'proxy';
  readonly usages: readonly Usage[];
  /** The loss is silent (no FIN, no RST): only the heartbeat can notice it, within the bound. */
  readonly silent: boolean;
  inject(ctx: FaultContext): Promise<void>;
  clear(ctx: FaultContext): Promise<void>;
  /**
   * Old connections the server still holds once the fault is lifted, which a real network would end at
   * heal but this fault does not (the chaos proxy swallowed their FIN for good): closed before the checks.
   */
  readonly orphansStay?: boolean;
}

interface FaultContext {
  server: RedisServer;
  proxy: ChaosProxy | undefined;
  clients: AppClient[];
  netns?: NetworkNamespace;
}

/** Kicks every connection of these clients (CLIENT KILL ID each): the server closes them with a FIN. */
async function kick(server: RedisServer, clients: readonly AppClient[]): Promise<number> {
  const names = new Set(clients.map((c) => c.name));
  const ids = (await server.clients()).filter((c) => names.has(c.name!)).map((c) => c.id!);
  let kicked = 0;
  for (const id of ids) kicked += await server.clientKill({ id });
  return kicked;
}

/**
 * The fault scenario: the app watches each usage's client; the fault goes in; every connection reads down
 * within the bound; the fault is lifted; each reads up again and its usage works.
 */
async function runFault(t: TestContext, server: RedisServer, fault: Fault, netns?: NetworkNamespace): Promise<void> {
  if (!server.isRunning()) await server.startAgain();
  const proxy = fault.via === 'proxy' ? await ChaosProxy.start(server.host, server.port) : undefined;
  const clients: AppClient[] = [];
  let started: { app: TestApp; log: StateLog } | undefined;
  try {
    for (const usage of fault.usages) clients.push(await AppClient.connect(usage, proxy?.host ?? server.host, proxy?.port ?? server.port));
    started = await startApp(clients);
    const { app, log } = started;
    // A few beats first, so the blocked client has had its side PINGs and keepalive set.
    await sleep(2 * INTERVAL_MS);
    const before = new Map<string, string[]>();
    for (const c of clients) before.set(c.name, (await c.connections(server)).map((conn) => conn.id!));
    const ctx: FaultContext = { server, proxy, clients, netns };

    const faultAt = now();
    await fault.inject(ctx);
    const downAt = new Map<Usage, number>();
    const detected = await eachUsage(clients, async (c) => {
      const elapsed = await log.waitFor(c.usage, 'down', faultAt, BOUND_MS + MARGIN_MS + 5_000);
      const down = log.first(c.usage, 'down', faultAt)!;
      downAt.set(c.usage, down.at);
      t.diagnostic(`${fault.title} · ${c.usage}: down after ${elapsed} ms (bound ${BOUND_MS} ms): ${down.reason}`);
      assert.ok(elapsed <= BOUND_MS + MARGIN_MS, `down after ${elapsed} ms, bound ${BOUND_MS} + margin ${MARGIN_MS} ms`);
      if (!fault.silent) assert.ok(elapsed <= MARGIN_MS, `a loss the client reports itself is read at once, not at the next beat: ${elapsed} ms`);
    });
    // A kicked client re-dials by itself at once and may be up again already; a silent fault holds.
    if (fault.silent) assert.equal((await app.health()).status, 503);

    const clearedAt = now();
    await fault.clear(ctx);
    if (fault.orphansStay) {
      for (const c of clients) {
        for (const id of before.get(c.name)!) await server.clientKill({ id }).catch(() => 0);
      }
    }
    const recovered = await eachUsage(clients, async (c) => {
      const since = downAt.get(c.usage) ?? faultAt;
      await log.waitFor(c.usage, 'up', since, RECOVER_MS + Math.max(0, clearedAt - since)).catch((error: Error) => {
        const { state, reason, lastError, reconnectAttempts } = app.snapshot(c.usage);
        const seen = JSON.stringify({ state, reason, lastError, reconnectAttempts, clientStatus: c.client.status, clientEvents: c.eventsSince(faultAt).join(' ') });
        throw new Error(`${error.message}; ${seen}`);
      });
      const upAt = log.first(c.usage, 'up', since)!.at;
      t.diagnostic(`${fault.title} · ${c.usage}: up ${Math.round(upAt - clearedAt)} ms after the fault was lifted; client events ${c.eventsSince(faultAt).join(' ')}`);
      assert.equal(app.registry.get(c.usage).client(), c.client, 'the handle gives the app client itself');
      await c.assertWorks(server, `${fault.title} ${unique()}`);
    });
    assert.deepEqual([...detected, ...recovered], [], 'every usage reads down within the bound, up again after, and works');
    assert.equal((await app.health()).status, 200);
  } finally {
    started?.log.stop();
    await started?.app.close();
    for (const c of clients) c.close();
    await proxy?.close();
    if (server.isRunning()) server.resume();
    else await server.startAgain();
    await netns?.heal();
  }
}

const SLOW_MS = TIMEOUT_MS + 200;

const FAULTS: readonly Fault[] = [
  {
    title: 'kill -9 of redis-server',
    via: 'server',
    usages: USAGES,
    silent: false,
    inject: ({ server }) => server.kill(),
    clear: ({ server }) => server.startAgain(),
  },
  {
    title: 'CLIENT KILL (server-side kick)',
    via: 'server',
    usages: USAGES,
    silent: false,
    inject: async ({ server, clients }) => assert.equal(await kick(server, clients), clients.length),
    // The client's own retryStrategy re-dials at once: nothing to lift.
    clear: async () => undefined,
  },
  {
    title: 'RST (chaos proxy reset)',
    via: 'proxy',
    usages: USAGES,
    silent: false,
    inject: async ({ proxy }) => proxy!.reset(),
    clear: async () => undefined,
  },
  {
    title: 'silent blackhole (chaos proxy swallows every byte)',
    via: 'proxy',
    usages: USAGES,
    silent: true,
    orphansStay: true,
    inject: async ({ proxy }) => proxy!.blackhole(),
    // Held a few beats more, so that reconnects through the blackhole (a handshake that never answers) are lived through too.
    clear: async ({ proxy }) => {
      await sleep(2 * INTERVAL_MS);
      proxy!.pass();
    },
  },
  {
    title: 'hung server (SIGSTOP: the kernel still accepts and ACKs, nothing answers)',
    via: 'server',
    usages: USAGES,
    silent: true,
    inject: async ({ server }) => server.pause(),
    clear: async ({ server }) => {
      await sleep(2 * INTERVAL_MS);
      server.resume();
    },
  },
  {
    title: `slow (proxy latency ${SLOW_MS} ms each way, above the ${TIMEOUT_MS} ms deadline)`,
    via: 'proxy',
    usages: ['idle', 'subscriber'],
    silent: true,
    inject: async ({ proxy }) => proxy!.latency(SLOW_MS),
    clear: async ({ proxy }) => {
      await sleep(2 * INTERVAL_MS);
      proxy!.pass();
    },
  },
];

describe('Redis kind, a WATCHED client (the app\'s own ioredis instance): each fault is read down within the bound and recovered', () => {
  let server: RedisServer;
  before(async () => (server = await RedisServer.start()));
  after(async () => server?.stop());

  for (const fault of FAULTS) {
    it(`${fault.title}: ${fault.usages.join(', ')}`, (t) => runFault(t, server, fault));
  }
});

const nsUnsupported = await NetworkNamespace.unsupportedReason();
if (nsUnsupported) console.log(`NetworkNamespace tests skipped: ${nsUnsupported}`);

describe('Redis kind, a WATCHED client: kernel-level blackhole (iptables DROP in a network namespace)', { skip: nsUnsupported }, () => {
  let netns: NetworkNamespace;
  let server: RedisServer;
  before(async () => {
    netns = await NetworkNamespace.create();
    server = await RedisServer.start({ netns });
  });
  after(async () => {
    await server?.stop();
    await netns?.destroy();
  });

  it('iptables DROP: idle, subscriber, blpop read down within the bound, up after heal; the old BLPOP connection is gone from the server', (t) =>
    runFault(
      t,
      server,
      {
        title: 'iptables DROP',
        via: 'server',
        usages: USAGES,
        silent: true,
        inject: async ({ netns: ns, server: s }) => ns!.blackhole(s.port),
        clear: async ({ netns: ns }) => {
          await sleep(2 * INTERVAL_MS);
          await ns!.heal();
        },
      },
      netns,
    ));

  it('an idle connection whose flow alone dies (iptables DROP of its one flow, as a NAT that forgot it): down within the bound, its socket dropped on evidence, up over a new flow', async (t) => {
    const idle = await AppClient.connect('idle', server.host, server.port);
    let started: { app: TestApp; log: StateLog } | undefined;
    try {
      started = await startApp([idle]);
      const { app, log } = started;
      await sleep(2 * INTERVAL_MS);
      const deadPort = (idle.client.stream as Socket).localPort!;
      const faultAt = now();
      await netns.blackholeClient(deadPort);
      const elapsed = await log.waitFor('idle', 'down', faultAt, BOUND_MS + MARGIN_MS);
      assert.ok(elapsed <= BOUND_MS + MARGIN_MS, `down after ${elapsed} ms, bound ${BOUND_MS} ms`);
      // A side connection (a new flow) is answered while the late PING's socket got not a byte: the
      // flow is dead, not the server slow, so its socket is dropped and the client dials a new one.
      const down = log.first('idle', 'down', faultAt)!;
      const upAfter = await log.waitFor('idle', 'up', down.at, RECOVER_MS);
      const newPort = (idle.client.stream as Socket).localPort;
      t.diagnostic(`one idle flow dropped: down after ${elapsed} ms, up ${upAfter} ms later on port ${newPort} (dead: ${deadPort})`);
      assert.notEqual(newPort, deadPort, 'the client dialled a new flow');
      assert.equal(app.registry.get('idle').client(), idle.client);
      await idle.assertWorks(server, `one idle flow ${unique()}`);
    } finally {
      started?.log.stop();
      await started?.app.close();
      idle.close();
      await netns.heal();
    }
  });

  it('the blocked connection alone dies silently (iptables DROP of its one flow): side PINGs still pass, the kernel keepalive the package set ends it', async (t) => {
    // Probes after 1 s of silence, 2 of them 1 s apart (Linux counts whole seconds): the dead flow is dropped
    // about 3 s after its last ACK. The socket is the one the app's client had before the app started.
    const keepAlive = { idleMs: 1_000, intervalMs: 1_000, count: 2 };
    const KEEPALIVE_BOUND_MS = keepAlive.idleMs + keepAlive.count * keepAlive.intervalMs;
    const blpop = await AppClient.connect('blpop', server.host, server.port);
    let started: { app: TestApp; log: StateLog } | undefined;
    try {
      started = await startApp([blpop], { keepAlive });
      const { app, log } = started;
      await sleep(2 * INTERVAL_MS);
      const blockedPort = (blpop.client.stream as Socket).localPort!;
      const faultAt = now();
      await netns.blackholeClient(blockedPort);
      const elapsed = await log.waitFor('blpop', 'down', faultAt, KEEPALIVE_BOUND_MS + MARGIN_MS + 10_000);
      const down = log.first('blpop', 'down', faultAt)!;
      const beatsMeanwhile = log.beats('blpop', faultAt).filter((b) => b.at < down.at);
      t.diagnostic(`one flow dropped: down after ${elapsed} ms (keepalive ${KEEPALIVE_BOUND_MS} ms): ${down.reason}; ${beatsMeanwhile.length} beats before, ${beatsMeanwhile.filter((b) => b.type === 'heartbeat' && b.ok).length} answered`);
      assert.ok(beatsMeanwhile.some((b) => b.type === 'heartbeat' && b.ok), 'the side PINGs pass while the blocked flow is dead: only keepalive can tell');
      assert.ok(elapsed <= KEEPALIVE_BOUND_MS + MARGIN_MS, `down after ${elapsed} ms, keepalive bound ${KEEPALIVE_BOUND_MS} ms`);
      // The client re-dials on a new port, which the rule leaves alone; the dead flow's rule stays.
      await log.waitFor('blpop', 'up', down.at, RECOVER_MS);
      assert.equal(app.registry.get('blpop').client(), blpop.client);
      // The server still holds the dead flow's BLPOP until its own keepalive ends it: close it as heal would.
      await netns.heal();
      await waitUntil(async () => (await blpop.connections(server)).filter((c) => c.cmd === 'blpop').length === 2, RECOVER_MS, 'the BLPOP re-sent');
      const [ghost] = (await blpop.connections(server)).filter((c) => c.cmd === 'blpop').sort((a, b) => Number(a.id) - Number(b.id));
      await server.clientKill({ id: ghost!.id! });
      await blpop.assertWorks(server, `one flow ${unique()}`);
    } finally {
      started?.log.stop();
      await started?.app.close();
      blpop.close();
      await netns.heal();
    }
  });
});

describe('Redis kind, a WATCHED client on a healthy server: neither read down nor delayed', () => {
  let server: RedisServer;
  before(async () => (server = await RedisServer.start()));
  after(async () => server?.stop());

  it('an idle client, a subscriber and a client blocked in BLPOP 0 stay up for 12 intervals; the BLPOP is never disturbed nor re-sent', async (t) => {
    const clients: AppClient[] = [];
    let started: { app: TestApp; log: StateLog } | undefined;
    try {
      for (const usage of USAGES) clients.push(await AppClient.connect(usage, server.host, server.port));
      started = await startApp(clients);
      const { app, log } = started;
      const blpop = clients.find((c) => c.usage === 'blpop')!;
      const startedAt = now();
      const blockedBefore = (await blpop.connections(server)).filter((c) => c.cmd === 'blpop');
      assert.equal(blockedBefore.length, 1, 'one blocked connection for the BLPOP client');
      await sleep(12 * INTERVAL_MS);
      for (const c of clients) {
        const beats = log.beats(c.usage, startedAt);
        const failed = beats.filter((b) => b.type === 'heartbeat' && !b.ok);
        const rtts = beats.map((b) => (b.type === 'heartbeat' ? b.rttMs ?? -1 : -1));
        t.diagnostic(`${c.usage}: ${beats.length} beats, rtt ${Math.min(...rtts)}..${Math.max(...rtts)} ms, states since start ${JSON.stringify(log.states(c.usage, startedAt))}`);
        assert.ok(beats.length >= 8, `${c.usage}: ${beats.length} beats in 12 intervals`);
        assert.deepEqual(failed, [], `${c.usage}: no failed beat`);
        assert.ok(!log.states(c.usage, startedAt).some((s) => s === 'down' || s === 'reconnecting'), `${c.usage}: never read down`);
        assert.equal(app.snapshot(c.usage).reconnectAttempts, 0);
        assert.deepEqual(c.eventsSince(startedAt), [], `${c.usage}: the client itself never closed nor reconnected`);
        assert.equal(c.client.status, 'ready');
      }
      // The blocked connection is the very one from the start (same id, still in BLPOP, blocked all along):
      // never dropped, never re-sent.
      const blockedAfter = (await blpop.connections(server)).filter((c) => c.cmd === 'blpop');
      assert.deepEqual(
        blockedAfter.map((c) => c.id),
        blockedBefore.map((c) => c.id),
      );
      assert.match(blockedAfter[0]!.flags!, /b/, 'the server flags it blocked');
      assert.ok(Number(blockedAfter[0]!.age) >= 5, `blocked for ${blockedAfter[0]!.age} s`);
      for (const c of clients) await c.assertWorks(server, `healthy ${unique()}`);
    } finally {
      started?.log.stop();
      await started?.app.close();
      for (const c of clients) c.close();
    }
  });
});

describe('Redis kind, an OWNED client (url / redisOptions): the package creates it', () => {
  let server: RedisServer;
  before(async () => (server = await RedisServer.start()));
  after(async () => {
    if (server && !server.isRunning()) await server.startAgain();
    await server?.stop();
  });

  it('a wrong password: the connection reads down with the server\'s own reason (WRONGPASS), and the password shows nowhere', async () => {
    const guarded = await RedisServer.start({ password: 'the-right-one' });
    const wrong = `wrong-${unique()}`;
    const app = await TestApp.start({
      health: { connections: [redisConnection({ name: 'cache', url: `redis://:${wrong}@${guarded.host}:${guarded.port}` })] },
    });
    try {
      await app.waitFor('cache', (s) => s.lastError !== undefined, 5_000);
      const snapshot = app.snapshot('cache');
      assert.notEqual(snapshot.state, 'up');
      assert.match(snapshot.lastError ?? '', /WRONGPASS/, 'the server says why, not only "Connection is closed."');
      assert.doesNotMatch(JSON.stringify(snapshot), new RegExp(wrong));
    } finally {
      await app.close();
      await guarded.stop();
    }
  });

  it('the same instance across a kill -9, its subscription made again; app.close() sends QUIT within the deadline', async (t) => {
    const baseline = activeHandles();
    const connectionName = `owned-${unique()}`;
    const channel = `owned-news-${unique()}`;
    const app = await TestApp.start({
      health: { shutdown: { timeoutMs: 1_000 }, connections: [redisConnection({ name: 'cache', url: server.url, redisOptions: { connectionName } })] },
    });
    let closed = false;
    try {
      await app.waitFor('cache', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
      const handle = app.registry.get('cache');
      const seen: Array<Redis | undefined> = [];
      const watch = handle.clientChanges$<Redis>().subscribe((client) => seen.push(client));
      const client = handle.client<Redis>();
      assert.ok(client instanceof Redis, 'handle.client() is an ioredis Redis');
      assert.equal(app.snapshot('cache').target, `${server.host}:${server.port}`);
      const messages: string[] = [];
      client.on('message', (_channel: string, message: string) => messages.push(message));
      await client.subscribe(channel);
      assert.equal((await server.clients()).filter((c) => c.name === connectionName).length, 1);

      const killedAt = now();
      await server.kill();
      const { elapsedMs } = await app.waitForState('cache', 'down', BOUND_MS + MARGIN_MS, killedAt);
      t.diagnostic(`owned, kill -9: down after ${elapsedMs} ms`);
      await sleep(INTERVAL_MS); // attempts meet a closed port
      assert.ok(app.snapshot('cache').reconnectAttempts >= 1);
      const restartedAt = now();
      await server.startAgain();
      const up = await app.waitForState('cache', 'up', RECOVER_MS, restartedAt);
      t.diagnostic(`owned, kill -9: up ${up.elapsedMs} ms after the restart`);
      assert.equal(handle.client(), client, 'the same instance after the reconnect');
      assert.equal(seen[0], client);
      assert.equal(seen.at(-1), client);
      assert.ok(seen.includes(undefined), 'undefined while lost');
      assert.ok(seen.every((c) => c === undefined || c === client), 'never another instance');
      await waitUntil(
        async () => {
          await server.command('PUBLISH', channel, 'after the kill');
          return messages.includes('after the kill');
        },
        RECOVER_MS,
        'the subscription made on the owned client is made again (autoResubscribe)',
      );
      watch.unsubscribe();

      const closingAt = now();
      await app.close();
      closed = true;
      const closeMs = Math.round(now() - closingAt);
      t.diagnostic(`owned: app.close() with QUIT took ${closeMs} ms`);
      assert.ok(closeMs < 1_000, `close took ${closeMs} ms: QUIT answered, not the deadline waited out`);
      assert.equal(client.status, 'end');
      assert.deepEqual((await server.clients()).filter((c) => c.name === connectionName), [], 'the server no longer holds it');
    } finally {
      if (!closed) await app.close();
    }
    await sleep(100);
    assert.deepEqual(leakedHandles(baseline), {}, 'no timer or socket left after app.close()');
  });

  it('the same instance across a silent blackhole (its suspect socket destroyed, connect() again); SET/GET work after', async (t) => {
    const proxy = await ChaosProxy.start(server.host, server.port);
    let app: TestApp | undefined;
    try {
      app = await TestApp.start({
        health: { shutdown: { timeoutMs: 1_000 }, connections: [redisConnection({ name: 'cache', url: `redis://${proxy.host}:${proxy.port}/2` })] },
      });
      await app.waitFor('cache', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
      const client = app.registry.get('cache').client<Redis>()!;
      await client.set('owned-key', 'before');
      const faultAt = now();
      proxy.blackhole();
      const { elapsedMs } = await app.waitForState('cache', 'down', BOUND_MS + MARGIN_MS + 5_000, faultAt);
      t.diagnostic(`owned, blackhole: down after ${elapsedMs} ms`);
      assert.ok(elapsedMs <= BOUND_MS + MARGIN_MS, `down after ${elapsedMs} ms`);
      await sleep(2 * INTERVAL_MS);
      const healedAt = now();
      proxy.pass();
      const up = await app.waitForState('cache', 'up', RECOVER_MS, healedAt);
      t.diagnostic(`owned, blackhole: up ${up.elapsedMs} ms after the blackhole was lifted`);
      assert.equal(app.registry.get('cache').client(), client, 'the same instance');
      // Database 2 of the url is selected again on the new connection.
      assert.equal(await client.get('owned-key'), 'before');
    } finally {
      await app?.close();
      await proxy.close();
    }
  });

  it('shutdown while the server is silent: QUIT waits until shutdown.timeoutMs, then the socket is dropped', async (t) => {
    const baseline = activeHandles();
    const proxy = await ChaosProxy.start(server.host, server.port);
    let app: TestApp | undefined;
    try {
      app = await TestApp.start({
        health: { shutdown: { timeoutMs: 1_000 }, connections: [redisConnection({ name: 'cache', url: `redis://${proxy.host}:${proxy.port}` })] },
      });
      await app.waitFor('cache', (s) => s.state === 'up', 10_000);
      const client = app.registry.get('cache').client<Redis>()!;
      proxy.blackhole();
      const closingAt = now();
      await app.close();
      app = undefined;
      const closeMs = Math.round(now() - closingAt);
      t.diagnostic(`owned: app.close() with an unanswered QUIT took ${closeMs} ms (shutdown.timeoutMs 1000)`);
      assert.ok(closeMs >= 800 && closeMs < 2_500, `close took ${closeMs} ms`);
      assert.equal(client.status, 'end');
    } finally {
      await app?.close();
      await proxy.close();
    }
    await sleep(100);
    assert.deepEqual(leakedHandles(baseline), {}, 'no timer or socket left after a forced close');
  });
});

describe('Redis kind: no harm to a WATCHED client', () => {
  let server: RedisServer;
  before(async () => (server = await RedisServer.start()));
  after(async () => server?.stop());

  it('after app.close() the clients are still ready and work, were never closed, and the package left no connection or listener of its own', async () => {
    const clients: AppClient[] = [];
    try {
      for (const usage of USAGES) clients.push(await AppClient.connect(usage, server.host, server.port));
      const events = ['connect', 'ready', 'close', 'end', 'error', 'reconnecting'] as const;
      const listeners = (c: AppClient) => events.map((event) => `${event} ${c.client.listenerCount(event)}`);
      const before = clients.map(listeners);
      const startedAt = now();
      const { app, log } = await startApp(clients);
      await sleep(4 * INTERVAL_MS); // beats, side PINGs of the blocked client included
      log.stop();
      await app.close();
      for (const c of clients) {
        assert.equal(c.client.status, 'ready', `${c.usage}: still ready`);
        assert.deepEqual(c.eventsSince(startedAt), [], `${c.usage}: never closed, quit nor reconnected by the package`);
      }
      assert.deepEqual(clients.map(listeners), before, "the package left no listener on the app's clients");
      // Only the app's three connections remain: no side connection, no connection of the package.
      const left = await server.clients();
      assert.deepEqual(left.map((c) => c.name).sort(), clients.map((c) => c.name).sort());
      for (const c of clients) await c.assertWorks(server, `after close ${unique()}`);
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('after kill, CLIENT KILL and RST in turn, the server never holds more than one connection per client (no ghosts)', async (t) => {
    const proxy = await ChaosProxy.start(server.host, server.port);
    const clients: AppClient[] = [];
    let started: { app: TestApp; log: StateLog } | undefined;
    try {
      for (const usage of USAGES) clients.push(await AppClient.connect(usage, proxy.host, proxy.port));
      started = await startApp(clients);
      const { log } = started;
      const faults: Array<[string, () => Promise<unknown>]> = [
        ['kill -9', async () => (await server.kill(), await server.startAgain())],
        ['CLIENT KILL', () => kick(server, clients)],
        ['RST', async () => proxy.reset()],
        ['CLIENT KILL again', () => kick(server, clients)],
      ];
      for (const [fault, inject] of faults) {
        const faultAt = now();
        await inject();
        for (const c of clients) await log.waitFor(c.usage, 'down', faultAt, RECOVER_MS);
        for (const c of clients) await log.waitFor(c.usage, 'up', faultAt, RECOVER_MS);
        // Sampled for a few beats: the blocked client's side connections (connect, PING, QUIT) come and go.
        const deadline = now() + 3 * INTERVAL_MS;
        while (now() < deadline) {
          for (const c of clients) {
            const conns = await c.connections(server);
            if (c.usage === 'blpop') {
              assert.ok(conns.filter((x) => x.cmd === 'blpop').length <= 1, `${fault} · blpop: ${JSON.stringify(conns)}`);
              // Anything else of its name is a beat's side connection: young and never blocked.
              assert.ok(conns.every((x) => x.cmd === 'blpop' || Number(x.age) <= 1), `${fault} · blpop: ${JSON.stringify(conns)}`);
            } else {
              assert.ok(conns.length <= 1, `${fault} · ${c.usage}: ${conns.length} connections on the server: ${JSON.stringify(conns)}`);
            }
          }
          await sleep(50);
        }
        t.diagnostic(`${fault}: recovered, at most one connection per client`);
      }
      for (const c of clients) {
        const conns = await c.connections(server);
        assert.equal(c.usage === 'blpop' ? conns.filter((x) => x.cmd === 'blpop').length : conns.length, 1, `${c.usage}: ${JSON.stringify(conns)}`);
      }
      for (const c of clients) await c.assertWorks(server, `after ghosts ${unique()}`);
    } finally {
      started?.log.stop();
      await started?.app.close();
      for (const c of clients) c.close();
      await proxy.close();
      if (!server.isRunning()) await server.startAgain();
    }
  });

  it('a client the app quit (status end) is read down and never reopened by the package', async (t) => {
    const idle = await AppClient.connect('idle', server.host, server.port);
    let started: { app: TestApp; log: StateLog } | undefined;
    try {
      started = await startApp([idle]);
      const { app, log } = started;
      const quitAt = now();
      await idle.client.quit();
      await waitUntil(() => idle.client.status === 'end', 1_000, 'the quit client ends');
      const elapsed = await log.waitFor('idle', 'down', quitAt, BOUND_MS + MARGIN_MS);
      t.diagnostic(`quit by the app: down after ${elapsed} ms: ${app.snapshot('idle').reason}`);
      // Several reconnect attempts' worth: each fails, none reopens the client.
      await sleep(6 * INTERVAL_MS);
      const snapshot: ConnectionSnapshot = app.snapshot('idle');
      t.diagnostic(`after ${6 * INTERVAL_MS} ms: ${snapshot.state}, ${snapshot.reconnectAttempts} attempts, last error ${snapshot.lastError}`);
      assert.ok(snapshot.state !== 'up' && snapshot.state !== 'degraded', `reads ${snapshot.state}`);
      assert.ok(snapshot.reconnectAttempts >= 2, `${snapshot.reconnectAttempts} attempts`);
      assert.match(snapshot.lastError ?? '', /end|quit|closed/i, 'the error says the client was ended');
      assert.equal(idle.client.status, 'end', 'never reopened');
      assert.deepEqual(idle.eventsSince(quitAt).filter((e) => e === 'ready' || e === 'reconnecting'), []);
      assert.deepEqual(await idle.connections(server), [], 'no connection of it on the server');
    } finally {
      started?.log.stop();
      await started?.app.close();
      idle.close();
    }
  });
});

describe('Redis kind: @MonitorConnection and provider tokens', () => {
  let server: RedisServer;
  before(async () => (server = await RedisServer.start()));
  after(async () => server?.stop());

  it('@MonitorConnection on a provider property holding an ioredis client: watched, beaten, recovered after a kick, left open', async (t) => {
    const connectionName = `decorated-${unique()}`;
    const redis = new Redis(server.url, { connectionName });
    redis.on('error', () => undefined);
    @Injectable()
    class CacheStore {
      @MonitorConnection({ kind: 'redis', name: 'store', ...timing } as never)
      readonly redis = redis;
    }
    let app: TestApp | undefined;
    let closed = false;
    try {
      app = await TestApp.start({ providers: [CacheStore], health: { shutdown: { timeoutMs: 1_000 } } });
      const store = app.app.get(CacheStore);
      await app.waitFor('store', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
      assert.equal(app.registry.get('store').client(), store.redis, 'the provider property\'s client itself');
      const kickedAt = now();
      assert.equal(await server.clientKill({ id: (await server.clients()).find((c) => c.name === connectionName)!.id! }), 1);
      const down = await app.waitForState('store', 'down', BOUND_MS + MARGIN_MS, kickedAt);
      const up = await app.waitForState('store', 'up', RECOVER_MS, kickedAt);
      t.diagnostic(`@MonitorConnection, CLIENT KILL: down after ${down.elapsedMs} ms, up after ${up.elapsedMs} ms`);
      await store.redis.set('decorated', 'yes');
      assert.equal(await store.redis.get('decorated'), 'yes');
      await app.close();
      closed = true;
      assert.equal(store.redis.status, 'ready', 'the app closes its client, not the package');
      assert.equal(await store.redis.ping(), 'PONG');
    } finally {
      if (!closed) await app?.close();
      redis.disconnect();
    }
  });

  it('client given as the token of its provider: the provider\'s instance is watched', async () => {
    const REDIS = 'REDIS_CLIENT';
    const connectionName = `token-${unique()}`;
    const client = new Redis(server.url, { connectionName });
    client.on('error', () => undefined);
    @Injectable()
    class UsesIt {
      constructor(@Inject(REDIS) readonly redis: Redis) {}
    }
    let app: TestApp | undefined;
    try {
      app = await TestApp.start({
        providers: [{ provide: REDIS, useValue: client }, UsesIt],
        health: { connections: [redisConnection({ name: 'tokened', client: REDIS })] },
      });
      await app.waitFor('tokened', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
      assert.equal(app.registry.get('tokened').client(), client);
      assert.equal(app.app.get(UsesIt).redis, client);
      await app.close();
      app = undefined;
      assert.equal(client.status, 'ready', 'left open for the app to close');
    } finally {
      await app?.close();
      client.disconnect();
    }
  });
});

/**
 * Review of issue 14 (redis kind): harm the package does to an app that installs it. Each test shows one
 * harm on a healthy server, with the app's client used as apps use it; each failed on the adapter before its fix.
 */
describe('Redis kind review: no harm to a healthy app', () => {
  let server: RedisServer;
  before(async () => (server = await RedisServer.start()));
  after(async () => server?.stop());

  /** A Lua script that holds the connection (and the server) for `ms`, then INCRs KEYS[1] once. */
  const SLOW_INCR = `
    local t = redis.call('TIME'); local start = t[1] * 1000000 + t[2]
    repeat t = redis.call('TIME') until (t[1] * 1000000 + t[2]) - start >= tonumber(ARGV[1]) * 1000
    return redis.call('INCR', KEYS[1])`;

  /** The same wait, then RPUSH KEYS[1] ARGV[2]: a job pushed as the server comes back from a slow moment. */
  const SLOW_PUSH = SLOW_INCR.replace("return redis.call('INCR', KEYS[1])", "return redis.call('RPUSH', KEYS[1], ARGV[2])");

  it('a slow command of the app (a 1.5 s script, beats of timeoutMs 300) runs once and its connection is not dropped', async (t) => {
    const idle = await AppClient.connect('idle', server.host, server.port);
    let started: { app: TestApp; log: StateLog } | undefined;
    try {
      started = await startApp([idle]);
      const key = `counter-${unique()}`;
      const since = now();
      const reply = await idle.client.eval(SLOW_INCR, 1, key, 1_500);
      await sleep(4 * INTERVAL_MS); // any re-sent copy of the script has run by now
      const count = Number(await idle.client.get(key));
      t.diagnostic(`EVAL answered ${String(reply)}; counter ${count}; client events ${idle.eventsSince(since).join(' ')}; states ${started.log.states('idle', since).join(' ')}`);
      assert.deepEqual(
        { reply, count, clientEvents: idle.eventsSince(since) },
        { reply: 1, count: 1, clientEvents: [] },
        "a busy but healthy connection is not dropped, and the app's non-idempotent command runs once",
      );
    } finally {
      started?.log.stop();
      await started?.app.close();
      idle.close();
    }
  });

  it("an app's lazyConnect client that the app connects itself at bootstrap (await client.connect()) still boots", async () => {
    const client = new Redis({ host: server.host, port: server.port, lazyConnect: true });
    client.on('error', () => undefined);
    @Injectable()
    class CacheStarter {
      async onApplicationBootstrap(): Promise<void> {
        await client.connect(); // the documented way to use lazyConnect
      }
    }
    let app: TestApp | undefined;
    try {
      const outcome = await TestApp.start({
        health: { connections: [redisConnection({ name: 'cache', client })] },
        providers: [CacheStarter],
      }).then(
        (started) => ((app = started), 'booted'),
        (error: Error) => `bootstrap failed: ${error.message}`,
      );
      assert.equal(outcome, 'booted');
    } finally {
      await app?.close();
      client.disconnect();
    }
  });

  it('a job pushed at the end of a slow moment of the server (another client\'s 1.5 s script) reaches the worker blocked in BLPOP', async (t) => {
    const blpop = await AppClient.connect('blpop', server.host, server.port);
    const other = new Redis({ host: server.host, port: server.port });
    other.on('error', () => undefined);
    let started: { app: TestApp; log: StateLog } | undefined;
    try {
      started = await startApp([blpop]);
      await sleep(2 * INTERVAL_MS); // side PINGs pass
      const since = now();
      // Another part of the app holds the server for 1.5 s, then pushes a job: the worker's BLPOP takes it.
      const job = `job-${unique()}`;
      await other.eval(SLOW_PUSH, 1, blpop.list, 1_500, job);
      const outcome = await Promise.race([blpop.popped!, sleep(RECOVER_MS).then(() => ({ error: 'still pending' }))]);
      const left = await other.llen(blpop.list);
      t.diagnostic(`BLPOP outcome ${JSON.stringify(outcome)}; left in the list ${left}; client events ${blpop.eventsSince(since).join(' ')}; states ${started.log.states('blpop', since).join(' ')}`);
      assert.deepEqual({ outcome, left }, { outcome: { value: [blpop.list, job] }, left: 0 }, 'the job reaches the worker, not a socket the package destroyed');
    } finally {
      started?.log.stop();
      await started?.app.close();
      blpop.close();
      other.disconnect();
    }
  });

  it('a message published at the end of a slow moment of the server (another client\'s 1.5 s script) reaches the subscriber', async (t) => {
    const subscriber = await AppClient.connect('subscriber', server.host, server.port);
    const other = new Redis({ host: server.host, port: server.port });
    other.on('error', () => undefined);
    let started: { app: TestApp; log: StateLog } | undefined;
    try {
      started = await startApp([subscriber]);
      await sleep(2 * INTERVAL_MS);
      const since = now();
      const body = `news-${unique()}`;
      const receivers = await other.eval(SLOW_PUSH.replace("redis.call('RPUSH'", "redis.call('PUBLISH'"), 1, subscriber.channel, 1_500, body);
      await sleep(4 * INTERVAL_MS);
      t.diagnostic(`PUBLISH reached ${String(receivers)} subscriber(s); received ${JSON.stringify(subscriber.messages)}; client events ${subscriber.eventsSince(since).join(' ')}`);
      assert.deepEqual(subscriber.messages, [body], 'the message reaches the subscriber, not a socket the package destroyed');
    } finally {
      started?.log.stop();
      await started?.app.close();
      subscriber.close();
      other.disconnect();
    }
  });

  it('a client in MONITOR mode (status "monitoring"), which answers no PING, is refused at bootstrap with the way out', async () => {
    const client = new Redis({ host: server.host, port: server.port });
    client.on('error', () => undefined);
    // Ready first: ioredis throws "Command queue state error" when a command of another client (here this
    // client's own INFO ready check) is logged in the same TCP read as MONITOR's +OK.
    await client.ping();
    const monitor = await client.monitor();
    monitor.on('error', () => undefined);
    try {
      await assert.rejects(
        TestApp.start({ health: { connections: [redisConnection({ name: 'monitor', client: monitor })] } }),
        (error: Error) => {
          assert.equal(
            error.message,
            'Connection "monitor": option "client" is "(a client in MONITOR mode)". A client in MONITOR mode answers no PING: ' +
              'monitor the client it came from (redis.monitor() returns a new one).',
          );
          return true;
        },
      );
      assert.equal(monitor.status, 'monitoring', 'the monitoring client is left as it was');
    } finally {
      monitor.disconnect();
      client.disconnect();
    }
  });
});

/**
 * The second hostile review of the Redis kind: the evidence rule (drop a socket only when its flow is dead)
 * against apps as they run, on real servers and real faults. Each test failed on the adapter before its fix.
 */
describe('Redis kind review 2: the evidence rule on a healthy but busy connection', () => {
  let server: RedisServer;
  before(async () => (server = await RedisServer.start()));
  after(async () => server?.stop());

  it('a write paused by CLIENT PAUSE WRITE (as FAILOVER and managed-Redis maintenance do) is not dropped by the package: the write fails nowhere and runs once', async (t) => {
    // autoResendUnfulfilledCommands off, as apps set it to never run a write twice: a dropped socket fails the write.
    const client = new Redis({ host: server.host, port: server.port, connectionName: `app-paused-${unique()}`, autoResendUnfulfilledCommands: false });
    client.on('error', () => undefined);
    const events: string[] = [];
    for (const name of ['close', 'reconnecting', 'end'] as const) client.on(name, () => events.push(name));
    const admin = new Redis({ host: server.host, port: server.port });
    admin.on('error', () => undefined);
    let app: TestApp | undefined;
    try {
      await client.ping();
      app = await TestApp.start({ health: { connections: [redisConnection({ name: 'paused', client })] } });
      await app.waitFor('paused', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
      const key = `counter-${unique()}`;
      // Writes pause for 2 s; reads (PING, INFO: a side connection's handshake) are served all along.
      await admin.call('CLIENT', 'PAUSE', '2000', 'WRITE');
      const outcome = await Promise.race([
        client.incr(key).then(
          (value) => ({ value }),
          (error: Error) => ({ error: error.message }),
        ),
        sleep(10_000).then(() => ({ error: 'still pending after 10 s' })),
      ]);
      await sleep(4 * INTERVAL_MS);
      const count = Number(await admin.get(key));
      t.diagnostic(`INCR ${JSON.stringify(outcome)}; counter ${count}; client events ${events.join(' ')}`);
      assert.deepEqual(
        { outcome, count, events },
        { outcome: { value: 1 }, count: 1, events: [] },
        'a connection whose write waits out a pause is healthy: the package must not drop its socket',
      );
    } finally {
      await admin.call('CLIENT', 'UNPAUSE').catch(() => undefined);
      await app?.close();
      client.disconnect();
      admin.disconnect();
    }
  });

  it('a big SET (8 MB) over a slow uplink (2 MB/s, so 4 s on the wire) completes once; the package does not drop its socket mid-upload over and over', async (t) => {
    // A per-flow slow uplink (a long fat pipe, a congested WAN): the app's bytes reach the server slowly, its
    // replies and every new flow (the side connection) are fast. Backpressure keeps the bytes in the client.
    const link = await SlowUplink.start(server.host, server.port, 2 * 1024 * 1024);
    const client = new Redis({ host: link.host, port: link.port, connectionName: `app-upload-${unique()}` });
    client.on('error', () => undefined);
    const events: string[] = [];
    for (const name of ['close', 'reconnecting', 'end'] as const) client.on(name, () => events.push(name));
    let app: TestApp | undefined;
    try {
      await client.ping();
      app = await TestApp.start({ health: { connections: [redisConnection({ name: 'upload', client })] } });
      await app.waitFor('upload', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
      const key = `blob-${unique()}`;
      const started = now();
      const outcome = await Promise.race([
        client.set(key, 'x'.repeat(8 * 1024 * 1024)).then(
          (value) => ({ value }),
          (error: Error) => ({ error: error.message }),
        ),
        sleep(20_000).then(() => ({ error: 'still pending after 20 s' })),
      ]);
      t.diagnostic(`SET ${JSON.stringify(outcome)} after ${Math.round(now() - started)} ms; client events ${events.join(' ')}; connections through the link ${link.connections}`);
      assert.deepEqual({ outcome, events }, { outcome: { value: 'OK' }, events: [] }, 'a slow upload is not a dead flow');
    } finally {
      await app?.close();
      client.disconnect();
      await link.close();
    }
  });
});

describe('Redis kind review 2: the evidence rule on a dead flow (iptables DROP of one flow, as a NAT that forgot it)', { skip: nsUnsupported }, () => {
  let netns: NetworkNamespace;
  let server: RedisServer;
  before(async () => {
    netns = await NetworkNamespace.create();
    server = await RedisServer.start({ netns });
  });
  after(async () => {
    await server?.stop();
    await netns?.destroy();
  });

  it("an app's client with commandTimeout below the beat's timeoutMs (a common setting): its dead flow is dropped and it works again within the bound", async (t) => {
    // commandTimeout 200 ms < timeoutMs 300 ms: ioredis rejects the PING itself before the beat's deadline.
    const client = new Redis({ host: server.host, port: server.port, commandTimeout: 200 });
    client.on('error', () => undefined);
    let app: TestApp | undefined;
    try {
      await client.ping();
      app = await TestApp.start({ health: { connections: [redisConnection({ name: 'timed', client })] } });
      await app.waitFor('timed', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
      await sleep(2 * INTERVAL_MS);
      const deadPort = (client.stream as Socket).localPort!;
      const faultAt = now();
      await netns.blackholeClient(deadPort);
      await app.waitFor('timed', (s) => s.state !== 'up' && s.state !== 'degraded', BOUND_MS + MARGIN_MS);
      const recovered = await app.waitFor('timed', (s) => s.state === 'up', RECOVER_MS).then(
        () => 'up',
        (error: Error) => error.message,
      );
      const newPort = (client.stream as Socket | undefined)?.localPort;
      const works = await client.set(`k-${unique()}`, 'v').then(
        (v) => v,
        (error: Error) => error.message,
      );
      t.diagnostic(`${Math.round(now() - faultAt)} ms after the fault: ${recovered}; port ${newPort} (dead: ${deadPort}); SET: ${works}`);
      assert.deepEqual(
        { recovered, newFlow: newPort !== deadPort, works },
        { recovered: 'up', newFlow: true, works: 'OK' },
        'the dead flow is dropped (the mission case), whatever commandTimeout the app set',
      );
    } finally {
      await app?.close();
      client.disconnect();
      await netns.heal();
    }
  });
});

/**
 * A TCP proxy whose client-to-server direction carries at most `bytesPerSecond` per connection, with
 * backpressure (the client's bytes wait in the client, as behind a slow link); the other direction is free.
 */
class SlowUplink {
  connections = 0;
  private readonly sockets = new Set<import('node:net').Socket>();

  private constructor(
    private readonly server: import('node:net').Server,
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number, bytesPerSecond: number): Promise<SlowUplink> {
    const net = await import('node:net');
    const server = net.createServer();
    const link: { value?: SlowUplink } = {};
    server.on('connection', (client) => {
      link.value!.connections++;
      const upstream = net.connect(targetPort, targetHost);
      for (const socket of [client, upstream]) {
        link.value!.sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      upstream.pipe(client);
      // 10 ms ticks, each allowed bytesPerSecond / 100 bytes; the client is paused while its bytes wait.
      const perTick = Math.max(1, Math.floor(bytesPerSecond / 100));
      const pending: Buffer[] = [];
      let timer: NodeJS.Timeout | undefined;
      const tick = () => {
        let budget = perTick;
        while (budget > 0 && pending.length > 0) {
          const chunk = pending[0]!;
          const part = chunk.subarray(0, budget);
          upstream.write(part);
          budget -= part.length;
          if (part.length === chunk.length) pending.shift();
          else pending[0] = chunk.subarray(part.length);
        }
        if (pending.length === 0) {
          timer = undefined;
          client.resume();
        } else timer = setTimeout(tick, 10);
      };
      client.on('data', (chunk: Buffer) => {
        pending.push(chunk);
        client.pause();
        timer ??= setTimeout(tick, 10);
      });
      client.on('close', () => clearTimeout(timer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    link.value = new SlowUplink(server, '127.0.0.1', (server.address() as import('node:net').AddressInfo).port);
    return link.value;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
