/**
 * The MQTT kind end to end: a real Nest app, real mosquitto brokers (private to this file, so killing one
 * disturbs no other file), real faults. Three usages: the package's own client (url) with a declared
 * subscription, the app's MQTT.js client with default options that subscribed itself, and the app's client
 * with a persistent session (clean: false, fixed clientId, QoS 1). Each reaches the broker through its own
 * chaos proxy. Every fault must read each usage down within intervalMs + timeoutMs (at once when the client
 * sees the loss itself), up again once it is lifted, and a QoS 1 message published after recovery must reach
 * every subscription.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { MonitorConnection } from '../lib/index.js';
import type { ConnectionDefinition, MonitorConnectionOptions } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { MosquittoServer } from './kit/mosquitto.server.js';
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
/** The app's clients give up a handshake lost in a blackhole after this (MQTT.js's default is 30 s). */
const APP_CONNECT_TIMEOUT_MS = 2_000;
const SHUTDOWN_MS = 1_000;
const timing = {
  heartbeat: { intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, connectTimeoutMs: 1_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: Infinity },
};
const now = () => performance.timeOrigin + performance.now();
const unique = () => randomBytes(4).toString('hex');

/** The definitions are built as plain objects: the kind is checked at bootstrap, as an app's config is. */
const mqttConnection = (definition: Record<string, unknown>) => ({ kind: 'mqtt', ...timing, ...definition }) as unknown as ConnectionDefinition;

/** The app's MQTT.js client; default options (reconnectPeriod 1 s) unless told, and a connectTimeout a test can wait out. */
async function appClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { connectTimeout: APP_CONNECT_TIMEOUT_MS, ...options });
  client.on('error', () => undefined); // an app has its own; the states tell what happened
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    setTimeout(() => reject(new Error(`${options.clientId ?? 'client'} did not connect`)), 10_000).unref();
  });
  return client;
}

/** Publishes one QoS 1 message straight to the broker (not through a proxy), from a short-lived client. */
async function publish(broker: MosquittoServer, topic: string, payload: string): Promise<void> {
  const client = await appClient(broker.url, { clientId: `e2e-pub-${unique()}`, reconnectPeriod: 0 });
  try {
    await client.publishAsync(topic, payload, { qos: 1 });
  } finally {
    await client.endAsync();
  }
}

/** Publishes until `received` holds the payload: a subscription made again after a reconnect may lag the CONNACK by a round trip. */
async function deliversAgain(broker: MosquittoServer, topic: string, received: string[], what: string): Promise<void> {
  const payload = `${what} ${unique()}`;
  await waitUntil(
    async () => {
      if (received.includes(payload)) return true;
      await publish(broker, topic, payload);
      await sleep(200);
      return received.includes(payload);
    },
    RECOVER_MS,
    `${what}: a QoS 1 message published after recovery arrives`,
  );
}

type Usage = 'own' | 'app' | 'persistent';
const USAGES: readonly Usage[] = ['own', 'app', 'persistent'];

/** One usage: its proxy, its client id, its subscription's topic and what reached it. */
interface UsageSetup {
  readonly usage: Usage;
  readonly proxy: ChaosProxy;
  readonly clientId: string;
  readonly topic: string;
  readonly received: string[];
  /** The app's client (undefined for `own`, whose client is the package's). */
  client?: MqttClient;
  /** When the client (the package's too) sent a CONNECT: how many connections a fault cost. */
  readonly connects: number[];
}

interface Fault {
  readonly title: string;
  /** The loss is silent (no FIN, no RST): only the heartbeat can notice it, within the bound. */
  readonly silent: boolean;
  /** The flow lives on, only slower: the connection must be kept, never dropped and dialled again. */
  readonly keepsConnection?: boolean;
  inject(broker: MosquittoServer, usages: readonly UsageSetup[]): Promise<void>;
  clear(broker: MosquittoServer, usages: readonly UsageSetup[]): Promise<void>;
}

const SLOW_MS = TIMEOUT_MS + 200;
const proxies = (usages: readonly UsageSetup[]) => usages.map((u) => u.proxy);

const FAULTS: readonly Fault[] = [
  {
    title: 'kill -9 of mosquitto',
    silent: false,
    inject: (broker) => broker.kill(),
    clear: (broker) => broker.startAgain(),
  },
  {
    title: 'RST (chaos proxy reset)',
    silent: false,
    inject: async (_broker, usages) => proxies(usages).forEach((p) => p.reset()),
    clear: async () => undefined,
  },
  {
    title: 'silent blackhole (chaos proxy swallows every byte)',
    silent: true,
    inject: async (_broker, usages) => proxies(usages).forEach((p) => p.blackhole()),
    // Held a few beats more, so that reconnects into the blackhole (a handshake that never answers) are lived through too.
    clear: async (_broker, usages) => {
      await sleep(2 * INTERVAL_MS);
      proxies(usages).forEach((p) => p.pass());
    },
  },
  {
    title: `slow (proxy latency ${SLOW_MS} ms each way, above the ${TIMEOUT_MS} ms deadline)`,
    silent: true,
    keepsConnection: true,
    inject: async (_broker, usages) => proxies(usages).forEach((p) => p.latency(SLOW_MS)),
    clear: async (_broker, usages) => {
      await sleep(2 * INTERVAL_MS);
      proxies(usages).forEach((p) => p.pass());
    },
  },
  {
    title: 'kick (session takeover by the broker)',
    silent: false,
    inject: async (broker, usages) => {
      for (const u of usages) await broker.kick(u.clientId);
    },
    // The clients re-dial by themselves (app) or through the engine (own): nothing to lift.
    clear: async () => undefined,
  },
];

describe('MQTT kind: the package\'s client, the app\'s client and a persistent session, each through a chaos proxy', () => {
  let broker: MosquittoServer;
  let app: TestApp;
  let log: StateLog;
  const usages: UsageSetup[] = [];
  const byUsage = (usage: Usage) => usages.find((u) => u.usage === usage)!;
  /** Every message the app's clients' own 'message' listeners saw, and those of a `#` subscriber beside them. */
  const appListenerSaw: string[] = [];
  const wildcardSaw: string[] = [];
  let wildcard: MqttClient;

  before(async () => {
    // Persistence: the persistent session and its queued messages also survive the kill -9 of the table.
    broker = await MosquittoServer.start({ persistence: true });
    const run = unique();
    for (const usage of USAGES) {
      const proxy = await ChaosProxy.start(broker.host, broker.port);
      usages.push({ usage, proxy, clientId: `e2e-${usage}-${run}`, topic: `e2e/${run}/${usage}`, received: [], connects: [] });
    }
    for (const u of usages) {
      if (u.usage === 'own') continue;
      const url = `mqtt://${u.proxy.host}:${u.proxy.port}`;
      u.client = await appClient(url, { clientId: u.clientId, ...(u.usage === 'persistent' ? { clean: false } : {}) });
      u.client.on('message', (topic, payload) => {
        appListenerSaw.push(`${topic} ${payload.toString()}`);
        if (topic === u.topic) u.received.push(payload.toString());
      });
      await u.client.subscribeAsync(u.topic, { qos: 1 });
    }
    wildcard = await appClient(broker.url, { clientId: `e2e-wildcard-${run}`, reconnectPeriod: 0 });
    wildcard.on('message', (topic, payload) => wildcardSaw.push(`${topic} ${payload.toString()}`));
    await wildcard.subscribeAsync('#', { qos: 1 });
    const own = byUsage('own');
    app = await TestApp.start({
      health: {
        shutdown: { timeoutMs: SHUTDOWN_MS },
        connections: [
          mqttConnection({
            name: 'own',
            url: `mqtt://${own.proxy.host}:${own.proxy.port}`,
            mqttOptions: { clientId: own.clientId },
            subscriptions: [{ topic: own.topic, qos: 1, onMessage: ({ payload }: { payload: Buffer }) => own.received.push(payload.toString()) }],
          }),
          mqttConnection({ name: 'app', client: byUsage('app').client }),
          mqttConnection({ name: 'persistent', client: byUsage('persistent').client }),
        ],
      },
    });
    log = new StateLog(app, USAGES);
    for (const usage of USAGES) await app.waitFor(usage, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
    for (const u of usages) {
      const client = (u.client ?? app.registry.get(u.usage).client()) as MqttClient;
      client.on('packetsend', (packet) => packet.cmd === 'connect' && u.connects.push(now()));
    }
  });

  after(async () => {
    log?.stop();
    await app?.close();
    for (const u of usages) u.client?.end(true);
    wildcard?.end(true);
    for (const u of usages) await u.proxy.close();
    await broker?.stop();
  });

  it('a healthy broker for 12 intervals: never down, no reconnect; no beat message reaches the app\'s listener or a `#` subscriber', async (t) => {
    const since = now();
    const reconnects = { app: 0, persistent: 0 };
    const count = (usage: 'app' | 'persistent') => () => (reconnects[usage] += 1);
    byUsage('app').client!.on('reconnect', count('app'));
    byUsage('persistent').client!.on('reconnect', count('persistent'));
    await sleep(12 * INTERVAL_MS);
    for (const usage of USAGES) {
      const beats = log.beats(usage, since).length;
      t.diagnostic(`${usage}: ${beats} beats, states ${log.states(usage, since).join(' ') || '(none)'}`);
      assert.ok(beats >= 8, `${usage}: beats went on (${beats})`);
      assert.deepEqual(log.states(usage, since), [], `${usage}: no transition`);
      assert.equal(app.snapshot(usage).state, 'up');
      assert.equal(app.snapshot(usage).reconnectAttempts, 0);
    }
    assert.deepEqual(reconnects, { app: 0, persistent: 0 }, 'the app\'s clients never reconnected');
    assert.deepEqual(appListenerSaw, [], 'no beat reached the app\'s message listeners');
    assert.deepEqual(wildcardSaw, [], 'no beat reached a # subscriber');
  });

  for (const fault of FAULTS) {
    it(`${fault.title}: every usage down within the bound, up again, its subscription fed`, (t) => runFault(t, fault));
  }

  it('a persistent session: QoS 1 messages published while its client was disconnected arrive after it is back', async (t) => {
    const persistent = byUsage('persistent');
    const cutAt = now();
    // Reset, and every new connection refused while the messages are published: the session is offline.
    persistent.proxy.refuse();
    persistent.proxy.reset();
    await log.waitFor('persistent', 'down', cutAt, MARGIN_MS);
    await waitUntil(() => !broker.connectedClients().includes(persistent.clientId), 5_000, 'the broker sees the session offline');
    const queued = [1, 2, 3].map((i) => `queued ${i} ${unique()}`);
    for (const payload of queued) await publish(broker, persistent.topic, payload);
    await sleep(2 * INTERVAL_MS);
    assert.ok(!queued.some((p) => persistent.received.includes(p)), 'nothing arrived while disconnected');
    persistent.proxy.pass();
    const upMs = await log.waitFor('persistent', 'up', cutAt, RECOVER_MS);
    await waitUntil(() => queued.every((p) => persistent.received.includes(p)), RECOVER_MS, 'the queued messages arrive');
    t.diagnostic(`up ${upMs} ms after the cut; received in order: ${persistent.received.filter((p) => queued.includes(p)).length}/3`);
    assert.deepEqual(
      persistent.received.filter((p) => queued.includes(p)),
      queued,
      'each queued message once, in order',
    );
  });

  it('the package\'s client with a persistent session: QoS 1 messages published while it was cut reach its onMessage after it is back', async (t) => {
    const proxy = await ChaosProxy.start(broker.host, broker.port);
    const topic = `e2e/owned-session/${unique()}`;
    const delivered: string[] = [];
    const sessionApp = await TestApp.start({
      health: {
        connections: [
          mqttConnection({
            name: 'owned-session',
            url: `mqtt://${proxy.host}:${proxy.port}`,
            mqttOptions: { clientId: `e2e-owned-session-${unique()}`, clean: false },
            subscriptions: [{ topic, qos: 1, onMessage: ({ payload }: { payload: Buffer }) => delivered.push(payload.toString()) }],
          }),
        ],
      },
    });
    try {
      await sessionApp.waitFor('owned-session', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
      proxy.refuse();
      proxy.reset();
      await sessionApp.waitFor('owned-session', (s) => s.state !== 'up', MARGIN_MS);
      const queued = [1, 2, 3].map((i) => `queued ${i} ${unique()}`);
      for (const payload of queued) await publish(broker, topic, payload);
      proxy.pass();
      const up = await sessionApp.waitFor('owned-session', (s) => s.state === 'up', RECOVER_MS);
      await waitUntil(() => queued.every((p) => delivered.includes(p)), RECOVER_MS, 'the queued messages reach onMessage');
      t.diagnostic(`up again (${up.state}); delivered ${delivered.length} of ${queued.length}`);
      assert.deepEqual(delivered, queued, 'each once, in order');
    } finally {
      await sessionApp.close();
      await proxy.close();
    }
  });

  it('after the whole table, the broker holds exactly one connection per usage', async () => {
    const expected = usages.map((u) => u.clientId).sort();
    const held = () => broker.connectedClients().filter((id) => id.startsWith('e2e-') && !id.startsWith('e2e-pub-') && !id.startsWith('e2e-wildcard-')).sort();
    await waitUntil(() => JSON.stringify(held()) === JSON.stringify(expected), 5_000, `one connection per usage (${held().join(', ')})`).catch(() => undefined);
    assert.deepEqual(held(), expected);
    for (const usage of USAGES) assert.equal(app.snapshot(usage).state, 'up');
  });

  async function runFault(t: TestContext, fault: Fault): Promise<void> {
    // Settled first: the fault before may have left a reconnect of its own in flight.
    for (const usage of USAGES) await app.waitFor(usage, (s) => s.state === 'up', RECOVER_MS);
    await sleep(2 * INTERVAL_MS);
    const faultAt = now();
    await fault.inject(broker, usages);
    const failures: string[] = [];
    const downAt = new Map<Usage, number>();
    for (const usage of USAGES) {
      try {
        const elapsed = await log.waitFor(usage, 'down', faultAt, BOUND_MS + MARGIN_MS + 5_000);
        const down = log.first(usage, 'down', faultAt)!;
        downAt.set(usage, down.at);
        t.diagnostic(`${fault.title} · ${usage}: down after ${elapsed} ms (bound ${BOUND_MS} ms): ${down.reason}`);
        assert.ok(elapsed <= BOUND_MS + MARGIN_MS, `down after ${elapsed} ms, bound ${BOUND_MS} + margin ${MARGIN_MS} ms`);
        if (!fault.silent) assert.ok(elapsed <= MARGIN_MS, `a loss the client sees itself is read at once, not at the next beat: ${elapsed} ms`);
      } catch (error) {
        failures.push(`${usage}: ${(error as Error).message}`);
      }
    }
    const clearedAt = now();
    await fault.clear(broker, usages);
    for (const u of usages) {
      try {
        const since = downAt.get(u.usage) ?? faultAt;
        await log.waitFor(u.usage, 'up', since, RECOVER_MS + Math.max(0, clearedAt - since)).catch((error: Error) => {
          const { state, reason, lastError, reconnectAttempts } = app.snapshot(u.usage);
          throw new Error(`${error.message}; ${JSON.stringify({ state, reason, lastError, reconnectAttempts, connected: u.client?.connected })}`);
        });
        const connects = u.connects.filter((at) => at >= faultAt).length;
        t.diagnostic(`${fault.title} · ${u.usage}: up ${Math.round(log.first(u.usage, 'up', since)!.at - clearedAt)} ms after the fault was lifted, ${connects} CONNECT(s) since the fault`);
        // A slow flow answers, late: it keeps its connection, its session and its messages in flight.
        if (fault.keepsConnection) assert.equal(connects, 0, 'a slow flow is never dropped');
        if (u.client) assert.equal(app.registry.get(u.usage).client(), u.client, 'the handle gives the app\'s client itself');
        await deliversAgain(broker, u.topic, u.received, `${fault.title} · ${u.usage}`);
      } catch (error) {
        failures.push(`${u.usage}: ${(error as Error).message}`);
      }
    }
    assert.deepEqual(failures, [], 'every usage reads down within the bound, up again after, and its subscription is fed');
  }
});

describe('MQTT kind: subscriptions, refusals and the broker\'s DISCONNECT (a broker with access rules)', () => {
  let broker: MosquittoServer;
  // Every SUBSCRIBE but to jobs/# refused until allowAllSubscriptions(); no PUBLISH to nobeat/#.
  before(async () => (broker = await MosquittoServer.start({ access: { subscribeOnly: ['jobs/#'], refusePublish: ['nobeat/#'] } })));
  after(async () => broker?.stop());

  it('an onMessage that throws is logged, crashes nothing, and the next message is still delivered', async () => {
    const topic = `jobs/${unique()}`;
    const delivered: string[] = [];
    const logger = new RecordingLogger();
    const app = await TestApp.start({
      logger,
      health: {
        connections: [
          mqttConnection({
            name: 'jobs',
            url: broker.url,
            subscriptions: [
              {
                topic,
                onMessage: ({ payload }: { payload: Buffer }) => {
                  delivered.push(payload.toString());
                  if (payload.toString() === 'poison') throw new Error('cannot parse the poison message');
                },
              },
            ],
          }),
        ],
      },
    });
    try {
      await app.waitFor('jobs', (s) => s.state === 'up', 10_000);
      await publish(broker, topic, 'poison');
      await publish(broker, topic, 'next');
      await waitUntil(() => delivered.includes('next'), 5_000, 'the message after the poison one arrives');
      assert.deepEqual(delivered, ['poison', 'next']);
      const failure = logger.lines.find((l) => /cannot parse the poison message/.test(l.message));
      assert.ok(failure, `the failure is logged: ${JSON.stringify(logger.lines)}`);
      assert.match(failure.message, new RegExp(topic.replace('/', '\\/')), 'the log names the subscription');
      assert.match(failure.message, /not delivered again/);
      assert.equal(app.snapshot('jobs').state, 'up');
    } finally {
      await app.close();
    }
  });

  it('a refused subscription reads degraded naming its topic; up once the broker allows it, on the same connection', async (t) => {
    const allowedTopic = `jobs/${unique()}`;
    const refusedTopic = `forbidden/${unique()}`;
    const delivered: string[] = [];
    const app = await TestApp.start({
      health: {
        connections: [
          mqttConnection({
            name: 'refused',
            url: broker.url,
            mqttOptions: { clientId: `e2e-refused-${unique()}` },
            subscriptions: [
              { topic: allowedTopic, onMessage: () => undefined },
              { topic: refusedTopic, onMessage: ({ payload }: { payload: Buffer }) => delivered.push(payload.toString()) },
            ],
          }),
        ],
      },
    });
    const log = new StateLog(app, ['refused']);
    try {
      const degraded = await app.waitFor('refused', (s) => s.state === 'degraded', 10_000);
      t.diagnostic(`degraded: ${degraded.reason}`);
      assert.ok(degraded.reason?.includes(`'${refusedTopic}'`), `the reason names the topic: ${degraded.reason}`);
      assert.doesNotMatch(degraded.reason ?? '', new RegExp(allowedTopic), 'the granted one is not named');
      await sleep(3 * INTERVAL_MS);
      assert.equal(app.snapshot('refused').state, 'degraded', 'still degraded while refused');
      assert.ok(!log.states('refused').includes('down'), `never down: ${log.states('refused').join(' ')}`);
      const allowedAt = now();
      await broker.allowAllSubscriptions();
      const upMs = await log.waitFor('refused', 'up', allowedAt, 5 * INTERVAL_MS + MARGIN_MS);
      t.diagnostic(`up ${upMs} ms after the broker allowed it`);
      assert.ok(!log.states('refused', allowedAt).includes('down'), 'no reconnect needed');
      await deliversAgain(broker, refusedTopic, delivered, 'the subscription granted late');
    } finally {
      log.stop();
      await app.close();
    }
  });

  it('an MQTT 5 client whose beat topic the broker refuses reads degraded (PUBACK not authorized), never down', async (t) => {
    const client = await appClient(broker.url, { protocolVersion: 5, clientId: `e2e-v5-${unique()}` });
    const app = await TestApp.start({ health: { connections: [mqttConnection({ name: 'v5', client, probe: 'publish', beatTopic: `nobeat/${unique()}` })] } });
    const log = new StateLog(app, ['v5']);
    try {
      const degraded = await app.waitFor('v5', (s) => s.state === 'degraded', 10_000);
      t.diagnostic(`degraded: ${degraded.reason}`);
      assert.match(degraded.reason ?? '', /refuses the heartbeat's PUBLISH to 'nobeat\//);
      assert.match(degraded.reason ?? '', /beatTopic/);
      await sleep(6 * INTERVAL_MS);
      // The open's own beat is refused too, but open() has no way to say so: the first beat after it reads degraded.
      assert.ok(!log.states('v5').some((s) => s !== 'degraded' && s !== 'up'), `never down: ${log.states('v5').join(' ')}`);
      assert.equal(app.snapshot('v5').state, 'degraded');
      assert.ok(client.connected, 'the app\'s client stays connected');
    } finally {
      log.stop();
      await app.close();
      await client.endAsync();
    }
  });

  it('an MQTT 5 client disconnected by the broker: down at once, the reason gives the broker\'s DISCONNECT code', async (t) => {
    const clientId = `e2e-v5-dropped-${unique()}`;
    const client = await appClient(broker.url, { protocolVersion: 5, clientId });
    const app = await TestApp.start({ health: { connections: [mqttConnection({ name: 'v5', client })] } });
    const log = new StateLog(app, ['v5']);
    try {
      await app.waitFor('v5', (s) => s.state === 'up', 10_000);
      const at = now();
      await broker.disconnectByAdministrativeAction([clientId]);
      const ms = await log.waitFor('v5', 'down', at, MARGIN_MS);
      const { reason } = log.first('v5', 'down', at)!;
      t.diagnostic(`down after ${ms} ms: ${reason}`);
      // 0x98: administrative action.
      assert.match(reason ?? '', /DISCONNECT, code 152/);
      await log.waitFor('v5', 'up', at, RECOVER_MS);
    } finally {
      log.stop();
      await app.close();
      await client.endAsync();
    }
  });
});

describe('MQTT kind: no harm', () => {
  let broker: MosquittoServer;
  before(async () => (broker = await MosquittoServer.start()));
  after(async () => broker?.stop());

  const EVENTS = ['close', 'message', 'packetreceive', 'packetsend', 'connect'] as const;
  const listenerCounts = (client: MqttClient) => Object.fromEntries(EVENTS.map((e) => [e, client.listenerCount(e)]));

  it('app.close() leaves the app\'s clients connected with their own listeners only; the package\'s client is gone from the broker', async () => {
    const topic = `news/${unique()}`;
    const plain = await appClient(broker.url, { clientId: `e2e-plain-${unique()}` });
    const persistent = await appClient(broker.url, { clientId: `e2e-session-${unique()}`, clean: false });
    const received: string[] = [];
    plain.on('message', (_topic, payload) => received.push(payload.toString()));
    await plain.subscribeAsync(topic, { qos: 1 });
    const before = { plain: listenerCounts(plain), persistent: listenerCounts(persistent) };
    const ownId = `e2e-owned-${unique()}`;
    const app = await TestApp.start({
      health: {
        shutdown: { timeoutMs: SHUTDOWN_MS },
        connections: [
          mqttConnection({ name: 'plain', client: plain }),
          mqttConnection({ name: 'persistent', client: persistent }),
          mqttConnection({ name: 'owned', url: broker.url, mqttOptions: { clientId: ownId }, subscriptions: [{ topic, onMessage: () => undefined }] }),
        ],
      },
    });
    try {
      for (const name of ['plain', 'persistent', 'owned']) await app.waitFor(name, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
      assert.ok(broker.connectedClients().includes(ownId));
    } finally {
      await app.close();
    }
    try {
      assert.deepEqual({ plain: listenerCounts(plain), persistent: listenerCounts(persistent) }, before, 'the listeners are the app\'s own again');
      assert.ok(plain.connected && persistent.connected, 'the app\'s clients stay connected');
      await waitUntil(() => !broker.connectedClients().includes(ownId), 5_000, 'the package\'s client left the broker');
      assert.ok(broker.connectedClients().includes(plain.options.clientId!));
      await deliversAgain(broker, topic, received, 'the app\'s subscription after app.close()');
    } finally {
      await plain.endAsync();
      await persistent.endAsync();
    }
  });

  it('app.close() while the app\'s client is between reconnects leaves it none of the package\'s listeners; it reconnects on its own after', async () => {
    const proxy = await ChaosProxy.start(broker.host, broker.port);
    const client = await appClient(`mqtt://${proxy.host}:${proxy.port}`, { clientId: `e2e-between-${unique()}` });
    const before = listenerCounts(client);
    const app = await TestApp.start({ health: { shutdown: { timeoutMs: SHUTDOWN_MS }, connections: [mqttConnection({ name: 'between', client })] } });
    try {
      await app.waitFor('between', (s) => s.state === 'up', 10_000);
      // Cut, and every reconnect of the client's refused: the package waits for its 'connect'.
      proxy.refuse();
      proxy.reset();
      await app.waitFor('between', (s) => s.state === 'down' || s.state === 'reconnecting', MARGIN_MS);
      await sleep(2 * INTERVAL_MS);
      assert.equal(client.connected, false);
    } finally {
      await app.close();
    }
    try {
      assert.deepEqual(listenerCounts(client), before, 'the listeners are the app\'s own again');
      proxy.pass();
      await waitUntil(() => client.connected, RECOVER_MS, 'the app\'s client reconnects by itself');
      assert.deepEqual(listenerCounts(client), before, 'and stay so after it reconnected');
    } finally {
      await client.endAsync();
      await proxy.close();
    }
  });

  it('close while blackholed returns within the shutdown deadline and leaves no timer or socket', async (t) => {
    const baseline = activeHandles();
    const proxy = await ChaosProxy.start(broker.host, broker.port);
    const url = `mqtt://${proxy.host}:${proxy.port}`;
    const client = await appClient(url, { clientId: `e2e-bh-${unique()}` });
    const app = await TestApp.start({
      health: {
        shutdown: { timeoutMs: SHUTDOWN_MS },
        connections: [
          mqttConnection({ name: 'watched', client }),
          mqttConnection({ name: 'owned', url, subscriptions: [{ topic: `bh/${unique()}`, onMessage: () => undefined }] }),
        ],
      },
    });
    let closeMs = Infinity;
    try {
      for (const name of ['watched', 'owned']) await app.waitFor(name, (s) => s.state === 'up', 10_000);
      const owned = app.registry.get('owned').client() as MqttClient;
      proxy.blackhole();
      // The app's QoS 1 message in flight on the package's client: its end() waits for a PUBACK that never comes.
      owned.publish(`bh/${unique()}`, 'in flight', { qos: 1 }, () => undefined);
      const faultAt = now();
      for (const name of ['watched', 'owned']) await app.waitForState(name, 'down', BOUND_MS + MARGIN_MS, faultAt);
    } finally {
      const closeAt = now();
      await app.close();
      closeMs = Math.round(now() - closeAt);
      client.end(true);
      await proxy.close();
    }
    t.diagnostic(`app.close() while blackholed: ${closeMs} ms (deadline ${SHUTDOWN_MS} ms)`);
    assert.ok(closeMs <= SHUTDOWN_MS + 1_000, `close took ${closeMs} ms`);
    await sleep(100);
    assert.deepEqual(leakedHandles(baseline), {}, 'no timer or socket left after app.close()');
  });

  it('the app\'s client ended by the app reads down "ended"; one with reconnectPeriod 0 kicked reads down for good, "never reconnects"', async (t) => {
    const ended = await appClient(broker.url, { clientId: `e2e-ended-${unique()}` });
    const neverId = `e2e-never-${unique()}`;
    const never = await appClient(broker.url, { clientId: neverId, reconnectPeriod: 0 });
    const app = await TestApp.start({
      health: { connections: [mqttConnection({ name: 'ended', client: ended }), mqttConnection({ name: 'never', client: never })] },
    });
    const log = new StateLog(app, ['ended', 'never']);
    try {
      for (const name of ['ended', 'never']) await app.waitFor(name, (s) => s.state === 'up', 10_000);
      const at = now();
      await ended.endAsync();
      await broker.kick(neverId);
      for (const name of ['ended', 'never']) {
        const ms = await log.waitFor(name, 'down', at, MARGIN_MS);
        t.diagnostic(`${name}: down after ${ms} ms: ${log.first(name, 'down', at)!.reason}`);
      }
      await sleep(4 * INTERVAL_MS);
      const endedSnapshot = app.snapshot('ended');
      const neverSnapshot = app.snapshot('never');
      t.diagnostic(`ended now ${endedSnapshot.state}: ${endedSnapshot.reason} / ${endedSnapshot.lastError}`);
      t.diagnostic(`never now ${neverSnapshot.state}: ${neverSnapshot.reason} / ${neverSnapshot.lastError}`);
      assert.match(`${endedSnapshot.reason} ${endedSnapshot.lastError ?? ''}`, /was ended/);
      assert.match(`${neverSnapshot.reason} ${neverSnapshot.lastError ?? ''}`, /never reconnects/);
      for (const name of ['ended', 'never']) {
        assert.ok(!log.states(name, at).includes('up'), `${name} never up again: ${log.states(name, at).join(' ')}`);
        assert.ok(['down', 'reconnecting', 'failed'].includes(app.snapshot(name).state), app.snapshot(name).state);
      }
      assert.ok(!ended.connected && !never.connected, 'the package connected neither again');
      assert.ok(!broker.connectedClients().includes(neverId), 'nor opened a connection in its place');
    } finally {
      log.stop();
      await app.close();
      never.end(true);
    }
  });

  it('the package\'s client refused by the broker (wrong password): down with the CONNACK\'s reason, retried, the password never shown', async (t) => {
    const guarded = await MosquittoServer.start({ user: { username: 'device', password: 'right-pass-3141' } });
    const wrong = `mqtt://device:wrong-pass-2718@${guarded.host}:${guarded.port}`;
    const app = await TestApp.start({ health: { connections: [mqttConnection({ name: 'refused', url: wrong })] } });
    try {
      const down = await app.waitFor('refused', (s) => s.reconnectAttempts >= 2, 10_000);
      const body = JSON.stringify(await app.health());
      t.diagnostic(`${down.state}: ${down.reason} / ${down.lastError}`);
      assert.match(`${down.reason} ${down.lastError}`, /Not authorized/i);
      for (const shown of [JSON.stringify(down), body]) assert.ok(!shown.includes('wrong-pass-2718'), `no password in ${shown}`);
      assert.deepEqual(guarded.connectedClients(), [], 'no client of the package stays connected');
    } finally {
      await app.close();
      await guarded.stop();
    }
  });

  it('@MonitorConnection on a property holding the app\'s client, and a provider token as `client`: both up, handles give the clients, up again after a kick', async (t) => {
    const decoratedId = `e2e-decorated-${unique()}`;
    const tokenId = `e2e-token-${unique()}`;
    const clients: MqttClient[] = [];
    let devices: Devices | undefined;
    @Injectable()
    class Devices {
      @MonitorConnection({ name: 'decorated', kind: 'mqtt', ...timing } as unknown as MonitorConnectionOptions)
      readonly client = mqtt.connect(broker.url, { clientId: decoratedId, connectTimeout: APP_CONNECT_TIMEOUT_MS });

      constructor() {
        this.client.on('error', () => undefined);
        clients.push(this.client);
        devices = this;
      }
    }
    const byToken = await appClient(broker.url, { clientId: tokenId });
    clients.push(byToken);
    let app: TestApp | undefined;
    let log: StateLog | undefined;
    try {
      app = await TestApp.start({
        providers: [Devices, { provide: 'APP_MQTT', useValue: byToken }],
        health: { connections: [mqttConnection({ name: 'by-token', client: 'APP_MQTT' })] },
      });
      log = new StateLog(app, ['decorated', 'by-token']);
      for (const name of ['decorated', 'by-token']) await app.waitFor(name, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 10_000);
      assert.equal(clients.length, 2, 'the decorated provider was made once');
      assert.equal(app.registry.get('decorated').client(), devices!.client);
      assert.equal(app.registry.get('by-token').client(), byToken);
      const kickAt = now();
      await broker.kick(decoratedId);
      await broker.kick(tokenId);
      for (const name of ['decorated', 'by-token']) {
        const downMs = await log.waitFor(name, 'down', kickAt, MARGIN_MS + 2_000);
        const upMs = await log.waitFor(name, 'up', log.first(name, 'down', kickAt)!.at, RECOVER_MS);
        t.diagnostic(`${name}: down ${downMs} ms after the kicks began, up ${upMs} ms later`);
      }
    } finally {
      log?.stop();
      await app?.close();
      for (const client of clients) client.end(true);
    }
  });
});
