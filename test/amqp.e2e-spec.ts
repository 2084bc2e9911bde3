/**
 * The AMQP kind end to end: a real Nest app, a real RabbitMQ 3.10 (the kit's), real faults. One app watches
 * the three ways an app holds an AMQP connection, each through a chaos proxy of its own so that one can be cut
 * alone: the package's own connection (`url`, OWNED) with a consumer of the definition, an app's
 * amqp-connection-manager (ACM) with a ChannelWrapper consuming a queue of the app's, and amqplib 2's
 * recovering model with a consumer of the definition (both WATCHED). Each fault (kill -9, RST, silent
 * blackhole, slow, server-side kick) must read every usage down within the bound, up again once it is lifted,
 * and a message published after recovery must reach the consumer. Then consumers (basic.cancel, a missing
 * queue, onMessage that throws or resolves), no harm on close, a plain ChannelModel, the decorator and a
 * provider token.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { connect as connectManager, type AmqpConnectionManager, type ChannelWrapper } from 'amqp-connection-manager';
import { MonitorConnection } from '../lib/index.js';
import type { ConnectionDefinition, MonitorConnectionOptions } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import type { RabbitMqServer } from './kit/rabbitmq.server.js';
import { sharedRabbitMq } from './kit/shared-servers.js';
import { activeHandles, leakedHandles, TestApp } from './kit/test-app.js';
import { StateLog, waitUntil } from './kit/state-log.js';

// Detection bound under test: intervalMs + timeoutMs (failureThreshold 1), plus a generous margin for a busy
// 2-core machine. The owned connection then negotiates AMQP heartbeats of max(1, floor(2 100 / 3 000)) = 1 s.
const INTERVAL_MS = 1_500;
const TIMEOUT_MS = 600;
const BOUND_MS = INTERVAL_MS + TIMEOUT_MS;
const MARGIN_MS = 2_000;
/** Up again, and each usage working, within this once the fault is lifted. */
const RECOVER_MS = 15_000;
/** Shutdown deadline of the app. */
const SHUTDOWN_MS = 1_000;
const timing = {
  heartbeat: { intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, connectTimeoutMs: 2_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 1_000, maxAttempts: Infinity },
};
/** ACM as a fast app sets it: 1 s heartbeats, 1 s between reconnects, a bounded handshake (else a blackholed one hangs). */
const acmOptions = (name: string) => ({
  heartbeatIntervalInSeconds: 1,
  reconnectTimeInSeconds: 1,
  connectionOptions: { timeout: 2_000, clientProperties: { connection_name: name } },
});
const now = () => performance.timeOrigin + performance.now();
const unique = () => randomBytes(4).toString('hex');

type Usage = 'owned' | 'acm' | 'recovering';
const USAGES: readonly Usage[] = ['owned', 'acm', 'recovering'];

/** The definitions are built as plain objects: the kind is checked at bootstrap, as an app's config is. */
const amqpConnection = (definition: Record<string, unknown>) => ({ kind: 'amqp', ...timing, ...definition }) as unknown as ConnectionDefinition;


/** The url of the broker, or of a proxy in front of it, with the app's client name (RabbitMQ shows it in list_connections). */
const amqpUrl = (host: string, port: number, query = '') => `amqp://guest:guest@${host}:${port}${query}`;

/** One short-lived admin connection straight to the broker, for what the tests do beside the app (publish, delete, check). */
async function withAdmin<T>(rabbit: RabbitMqServer, use: (channel: ConfirmChannel) => Promise<T>): Promise<T> {
  const model = await amqp.connect(rabbit.amqpUrl, { clientProperties: { connection_name: 'test-admin' } });
  model.on('error', () => undefined);
  try {
    const channel = await model.createConfirmChannel();
    channel.on('error', () => undefined);
    return await use(channel);
  } finally {
    await model.close().catch(() => undefined);
  }
}

async function publish(rabbit: RabbitMqServer, queue: string, body: string): Promise<void> {
  await withAdmin(rabbit, async (channel) => {
    channel.sendToQueue(queue, Buffer.from(body));
    await channel.waitForConfirms();
  });
}

/** The broker's connections (pid, the client's connection_name, its channel count), from one rabbitmqctl run. */
async function brokerConnections(rabbit: RabbitMqServer): Promise<Array<{ pid: string; name: string; channels: number }>> {
  // Table rows: `<node.1.2.0>\t2\t[{"connection_name","app-acm"},{"product","amqplib"},...]` (the JSON formatter's
  // pids are local to the rabbitmqctl VM and refused by close_connection).
  const table = await rabbit.ctl(['list_connections', '--no-table-headers', 'pid', 'channels', 'client_properties']);
  return table
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [pid, channels, properties] = line.split('\t');
      return { pid: pid!.trim(), channels: Number(channels), name: /\{"connection_name","([^"]*)"\}/.exec(properties ?? '')?.[1] ?? '' };
    });
}

/** `rabbitmqctl close_connection` of the connections whose connection_name is `name`: 320 CONNECTION_FORCED, then FIN. */
async function kickNamed(rabbit: RabbitMqServer, name: string): Promise<number> {
  const pids = (await brokerConnections(rabbit)).filter((c) => c.name === name).map((c) => c.pid);
  for (const pid of pids) await rabbit.ctl(['close_connection', pid, `test kick of ${name}`]);
  return pids.length;
}

/** The channels open on an amqplib connection, from its own channel table (slot 0 is the connection itself). */
function channelCount(model: ChannelModel | undefined): number | undefined {
  const table = (model?.connection as unknown as { channels?: Array<unknown | null> } | undefined)?.channels;
  return table?.slice(1).filter((slot) => slot !== null && slot !== undefined).length;
}

/** amqplib 2's recovering model keeps its current ChannelModel private; the tests read it to count its channels. */
function currentModelOf(recovering: EventEmitter): ChannelModel | undefined {
  return (recovering as unknown as { _core?: { _model?: ChannelModel | null } })._core?._model ?? undefined;
}

/** The listener count of every event an emitter has listeners for. */
function listeners(emitter: EventEmitter | undefined): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const event of emitter?.eventNames() ?? []) counts[String(event)] = emitter!.listenerCount(event);
  return counts;
}

interface Received {
  body: string;
  redelivered: boolean;
  at: number;
}

/** A consumer of a definition: it records every message and resolves (so the package acks it). */
function recordingConsumer(queue: string, received: Received[], extra: Record<string, unknown> = {}) {
  return {
    queue,
    assert: { durable: false },
    onMessage: (message: ConsumeMessage) => {
      received.push({ body: message.content.toString(), redelivered: message.fields.redelivered, at: now() });
    },
    ...extra,
  };
}

/** An app whose one connection, 'orders', is the package's own, with this consumer. */
function startOrders(rabbit: RabbitMqServer, consumer: Record<string, unknown>): Promise<TestApp> {
  return TestApp.start({ health: { shutdown: { timeoutMs: SHUTDOWN_MS }, connections: [amqpConnection({ name: 'orders', url: rabbit.amqpUrl, consumers: [consumer] })] } });
}

/** Publishes `body` until it shows in `received` (a consumer re-made on a new connection may lag its 'up' by a round trip). */
async function publishUntilReceived(rabbit: RabbitMqServer, queue: string, received: Received[], body: string, what: string): Promise<void> {
  await waitUntil(
    async () => {
      if (received.some((r) => r.body === body)) return true;
      await publish(rabbit, queue, body).catch(() => undefined);
      await sleep(300);
      return received.some((r) => r.body === body);
    },
    RECOVER_MS,
    `${what}: a message published after recovery reaches the consumer`,
  );
}

/** Collects the failures of several usages, so that one test reports all of them. */
async function eachUsage(usages: readonly Usage[], check: (usage: Usage) => Promise<void>): Promise<string[]> {
  const outcomes = await Promise.allSettled(usages.map(check));
  return outcomes.flatMap((outcome, i) => (outcome.status === 'rejected' ? [`${usages[i]}: ${(outcome.reason as Error).message}`] : []));
}

/** The three usages the app watches, each through its own proxy, and what their consumers received. */
class Usages {
  readonly proxies = new Map<Usage, ChaosProxy>();
  readonly queues = new Map<Usage, string>(USAGES.map((u) => [u, `e2e.${u}.${unique()}`]));
  readonly received = new Map<Usage, Received[]>(USAGES.map((u) => [u, []]));
  manager!: AmqpConnectionManager;
  wrapper!: ChannelWrapper;
  recovering!: EventEmitter & { close(): Promise<void>; createChannel(): Promise<amqp.Channel> };
  /** The app's own events of its clients, with when: 'disconnect', 'connect'. */
  readonly clientEvents: Array<{ usage: Usage; name: string; at: number }> = [];

  static async start(rabbit: RabbitMqServer): Promise<Usages> {
    const usages = new Usages();
    for (const usage of USAGES) usages.proxies.set(usage, await ChaosProxy.start(rabbit.host, rabbit.amqpPort));
    const acmProxy = usages.proxies.get('acm')!;
    usages.manager = connectManager([amqpUrl(acmProxy.host, acmProxy.port)], acmOptions('app-acm'));
    usages.manager.on('connect', () => usages.clientEvents.push({ usage: 'acm', name: 'connect', at: now() }));
    usages.manager.on('disconnect', () => usages.clientEvents.push({ usage: 'acm', name: 'disconnect', at: now() }));
    const acmQueue = usages.queues.get('acm')!;
    usages.wrapper = usages.manager.createChannel({ setup: (channel: ConfirmChannel) => channel.assertQueue(acmQueue, { durable: false }) });
    usages.wrapper.on('error', () => undefined);
    await usages.wrapper.waitForConnect();
    const acmReceived = usages.received.get('acm')!;
    await usages.wrapper.consume(acmQueue, (message) => {
      acmReceived.push({ body: message.content.toString(), redelivered: message.fields.redelivered, at: now() });
      usages.wrapper.ack(message);
    });
    const recProxy = usages.proxies.get('recovering')!;
    // heartbeat=1 in the url, and a bounded handshake, as an app that wants its own recovery fast sets them.
    usages.recovering = (await amqp.connect(amqpUrl(recProxy.host, recProxy.port, '?heartbeat=1'), {
      recovery: { initialDelay: 100, maxDelay: 1_000 },
      timeout: 2_000,
      clientProperties: { connection_name: 'app-recovering' },
    })) as unknown as Usages['recovering'];
    usages.recovering.on('error', () => undefined);
    usages.recovering.on('connect', () => usages.clientEvents.push({ usage: 'recovering', name: 'connect', at: now() }));
    usages.recovering.on('disconnect', () => usages.clientEvents.push({ usage: 'recovering', name: 'disconnect', at: now() }));
    return usages;
  }

  definitions(): ConnectionDefinition[] {
    const ownedProxy = this.proxies.get('owned')!;
    return [
      amqpConnection({
        name: 'owned',
        url: amqpUrl(ownedProxy.host, ownedProxy.port),
        socketOptions: { clientProperties: { connection_name: 'package-owned' } },
        consumers: [recordingConsumer(this.queues.get('owned')!, this.received.get('owned')!)],
      }),
      amqpConnection({ name: 'acm', connection: this.manager }),
      amqpConnection({
        name: 'recovering',
        connection: this.recovering,
        consumers: [recordingConsumer(this.queues.get('recovering')!, this.received.get('recovering')!)],
      }),
    ];
  }

  /** The app's own connection of a watched usage now (for its channel table). */
  appModel(usage: Usage): ChannelModel | undefined {
    if (usage === 'acm') return this.manager.connection as ChannelModel | undefined;
    if (usage === 'recovering') return currentModelOf(this.recovering);
    return undefined;
  }

  clientEventsSince(usage: Usage, since: number): string {
    return this.clientEvents
      .filter((e) => e.usage === usage && e.at >= since)
      .map((e) => `${e.name}@${Math.round(e.at - since)}`)
      .join(' ');
  }

  async close(): Promise<void> {
    // close() waits for close-ok; against a broken path that never comes: bounded.
    await Promise.race([Promise.all([this.manager?.close(), this.recovering?.close()]).catch(() => undefined), sleep(2_000)]);
    for (const proxy of this.proxies.values()) await proxy.close();
  }
}

interface Fault {
  readonly title: string;
  /** The usages the fault hits; the others must stay up all along. */
  readonly cut: readonly Usage[];
  /** The loss is silent (no FIN, no RST): only the heartbeat can notice it, within the bound. */
  readonly silent: boolean;
  /** The flow stays alive (AMQP heartbeat frames pass): the app's own connections must never be dropped, by anyone. */
  readonly flowLives?: boolean;
  inject(ctx: FaultContext): Promise<void>;
  clear(ctx: FaultContext): Promise<void>;
}

interface FaultContext {
  rabbit: RabbitMqServer;
  usages: Usages;
  cut: readonly Usage[];
}

const SLOW_MS = TIMEOUT_MS + 300;
const proxiesOf = ({ usages, cut }: FaultContext) => cut.map((u) => usages.proxies.get(u)!);

const FAULTS: readonly Fault[] = [
  {
    title: 'kill -9 of RabbitMQ',
    cut: USAGES,
    silent: false,
    inject: ({ rabbit }) => rabbit.kill(),
    clear: ({ rabbit }) => rabbit.startAgain(),
  },
  {
    title: 'RST (chaos proxy reset)',
    cut: USAGES,
    silent: false,
    inject: async (ctx) => proxiesOf(ctx).forEach((p) => p.reset()),
    clear: async () => undefined,
  },
  {
    title: 'RST of the ACM connection alone',
    cut: ['acm'],
    silent: false,
    inject: async (ctx) => proxiesOf(ctx).forEach((p) => p.reset()),
    clear: async () => undefined,
  },
  {
    title: 'silent blackhole (chaos proxy swallows every byte)',
    cut: USAGES,
    silent: true,
    inject: async (ctx) => proxiesOf(ctx).forEach((p) => p.blackhole()),
    // Held a few seconds more, so that the clients' own heartbeat timeouts and reconnects into the blackhole are lived through too.
    clear: async (ctx) => {
      await sleep(3_000);
      proxiesOf(ctx).forEach((p) => p.pass());
    },
  },
  {
    title: `slow (proxy latency ${SLOW_MS} ms each way, above the ${TIMEOUT_MS} ms deadline)`,
    cut: USAGES,
    silent: true,
    flowLives: true,
    inject: async (ctx) => proxiesOf(ctx).forEach((p) => p.latency(SLOW_MS)),
    clear: async (ctx) => {
      await sleep(2 * INTERVAL_MS);
      proxiesOf(ctx).forEach((p) => p.pass());
    },
  },
  {
    title: 'server-side kick (rabbitmqctl close_connection of every AMQP connection)',
    cut: USAGES,
    silent: false,
    inject: async ({ rabbit }) => assert.ok((await rabbit.closeAmqpConnections('e2e kick')) >= 3, 'the three connections kicked'),
    clear: async () => undefined,
  },
];

/** The channels of the package on the app's connections right after the app started: the same count must hold after recovery. */
const baselineChannels = new Map<Usage, number | undefined>();

async function runFault(t: TestContext, rabbit: RabbitMqServer, usages: Usages, app: TestApp, log: StateLog, fault: Fault): Promise<void> {
  // Every usage up before the fault (the previous test may have ended on a late recovery).
  for (const usage of USAGES) await app.waitFor(usage, (s) => s.state === 'up', RECOVER_MS);
  const spared = USAGES.filter((u) => !fault.cut.includes(u));
  const ctx: FaultContext = { rabbit, usages, cut: fault.cut };
  const faultAt = now();
  await fault.inject(ctx);
  const injectMs = now() - faultAt;
  const downAt = new Map<Usage, number>();
  const detected = await eachUsage(fault.cut, async (usage) => {
    const elapsed = await log.waitFor(usage, 'down', faultAt, injectMs + BOUND_MS + MARGIN_MS + 5_000);
    const down = log.first(usage, 'down', faultAt)!;
    downAt.set(usage, down.at);
    t.diagnostic(`${fault.title} · ${usage}: down after ${elapsed} ms (bound ${BOUND_MS} ms, fault injected in ${Math.round(injectMs)} ms): ${down.reason}`);
    assert.ok(elapsed <= injectMs + BOUND_MS + MARGIN_MS, `down after ${elapsed} ms, bound ${BOUND_MS} + margin ${MARGIN_MS} ms`);
    if (!fault.silent) assert.ok(elapsed <= injectMs + MARGIN_MS, `a loss the client reports itself is read at once, not at the next beat: ${elapsed} ms`);
  });
  if (fault.silent) assert.equal((await app.health()).status, 503);

  const clearedAt = now();
  await fault.clear(ctx);
  const recovered = await eachUsage(fault.cut, async (usage) => {
    const since = downAt.get(usage) ?? faultAt;
    await log.waitFor(usage, 'up', since, RECOVER_MS + Math.max(0, now() - since)).catch((error: Error) => {
      const { state, reason, lastError, reconnectAttempts } = app.snapshot(usage);
      throw new Error(`${error.message}; ${JSON.stringify({ state, reason, lastError, reconnectAttempts, clientEvents: usages.clientEventsSince(usage, faultAt) })}`);
    });
    const upAt = log.first(usage, 'up', since)!.at;
    t.diagnostic(`${fault.title} · ${usage}: up ${Math.round(upAt - clearedAt)} ms after the fault was lifted; app client events ${usages.clientEventsSince(usage, faultAt) || '(none)'}`);
    await publishUntilReceived(rabbit, usages.queues.get(usage)!, usages.received.get(usage)!, `after ${fault.title} ${unique()}`, usage);
  });
  const sparedHeld = await eachUsage(spared, async (usage) => {
    assert.deepEqual(log.states(usage, faultAt), [], `${usage} was not cut: it never left up`);
  });
  // A slow but live flow: the package reads it down and drops nothing; the app's connections never noticed.
  const untouched = await eachUsage(fault.flowLives ? (['acm', 'recovering'] as const) : [], async (usage) => {
    assert.equal(usages.clientEventsSince(usage, faultAt), '', `${usage}: the app's connection was never dropped`);
  });
  assert.deepEqual([...detected, ...recovered, ...sparedHeld, ...untouched], [], 'every usage cut reads down within the bound, up again after, and its consumer gets a message; the others stay up');
  // No channel of the package piles up on the app's connections across the fault (a re-make per attempt).
  for (const usage of ['acm', 'recovering'] as const) {
    await waitUntil(
      () => channelCount(usages.appModel(usage)) === baselineChannels.get(usage),
      5_000,
      `${usage}: the app's connection holds ${baselineChannels.get(usage)} channels as after the start, now ${channelCount(usages.appModel(usage))}`,
    );
  }
  assert.equal((await app.health()).status, 200);
}

let rabbit: RabbitMqServer;
before(async () => {
  rabbit = await sharedRabbitMq();
});
after(async () => {
  if (rabbit && !rabbit.isRunning()) await rabbit.startAgain();
});

describe('AMQP kind, one app watching three usages (owned url + consumer, an app\'s ACM, an app\'s recovering model): each fault read down and recovered', () => {
  let usages: Usages;
  let app: TestApp;
  let log: StateLog;
  before(async () => {
    usages = await Usages.start(rabbit);
    app = await TestApp.start({ health: { shutdown: { timeoutMs: SHUTDOWN_MS }, connections: usages.definitions() } });
    log = new StateLog(app, USAGES);
    for (const usage of USAGES) await app.waitFor(usage, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 20_000);
    for (const usage of ['acm', 'recovering'] as const) baselineChannels.set(usage, channelCount(usages.appModel(usage)));
  });
  after(async () => {
    log?.stop();
    await app?.close();
    await usages?.close();
  });

  it('all three up; the handle gives the app\'s object for watched usages and an amqplib ChannelModel for the owned one; messages reach each consumer', async (t) => {
    t.diagnostic(`channels on the app's connections with the package watching: acm ${baselineChannels.get('acm')}, recovering ${baselineChannels.get('recovering')}`);
    assert.equal(app.registry.get('acm').client(), usages.manager);
    assert.equal(app.registry.get('recovering').client(), usages.recovering);
    const owned = app.registry.get('owned').client<ChannelModel>();
    assert.ok(owned && typeof owned.createChannel === 'function' && owned.connection, 'owned: an amqplib ChannelModel');
    const proxy = usages.proxies.get('owned')!;
    assert.equal(app.snapshot('owned').target, `${proxy.host}:${proxy.port}`, 'target without credentials');
    for (const usage of USAGES) await publishUntilReceived(rabbit, usages.queues.get(usage)!, usages.received.get(usage)!, `hello ${unique()}`, usage);
    // The package opened at least its beat channel on each watched connection (and ACM's wrapper has one of its own).
    assert.ok((baselineChannels.get('acm') ?? 0) >= 2, `acm: ${baselineChannels.get('acm')} channels`);
    assert.ok((baselineChannels.get('recovering') ?? 0) >= 2, `recovering: ${baselineChannels.get('recovering')} channels (beat + consumer)`);
  });

  for (const fault of FAULTS) {
    it(`${fault.title}: ${fault.cut.join(', ')}`, (t) => runFault(t, rabbit, usages, app, log, fault));
  }

  it('after every fault, the broker holds one connection per usage: no ghost of an attempt given up, nor of a connection the package dropped', async (t) => {
    for (const usage of USAGES) await app.waitFor(usage, (s) => s.state === 'up', RECOVER_MS);
    const names = ['package-owned', 'app-acm', 'app-recovering'];
    let seen: Array<{ name: string; channels: number }> = [];
    // An old connection of a blackhole lives on the broker until its own heartbeat timeout (1 s frames: 2-3 s).
    await waitUntil(
      async () => {
        seen = (await brokerConnections(rabbit)).filter((c) => names.includes(c.name));
        return names.every((name) => seen.filter((c) => c.name === name).length === 1);
      },
      15_000,
      `one connection per usage on the broker, seen ${JSON.stringify(seen)}`,
    );
    t.diagnostic(`broker: ${JSON.stringify(seen)}`);
  });
});

describe('AMQP kind, consumers', () => {
  it('the queue deleted by someone else (basic.cancel): degraded with the queue named, up again once the consumer is re-made (assert declares it again); a message reaches it', async (t) => {
    const queue = `e2e.cancelled.${unique()}`;
    const received: Received[] = [];
    const app = await startOrders(rabbit, recordingConsumer(queue, received));
    const log = new StateLog(app, ['orders']);
    try {
      await app.waitFor('orders', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 20_000);
      const deletedAt = now();
      await withAdmin(rabbit, (channel) => channel.deleteQueue(queue));
      const degradedMs = await log.waitFor('orders', 'degraded', deletedAt, BOUND_MS + MARGIN_MS);
      const degraded = log.first('orders', 'degraded', deletedAt)!;
      t.diagnostic(`degraded after ${degradedMs} ms: ${degraded.reason}`);
      assert.match(degraded.reason, new RegExp(queue.replace(/\./g, '\\.')), 'the reason names the queue');
      const upMs = await log.waitFor('orders', 'up', degraded.at, 2 * INTERVAL_MS + MARGIN_MS);
      t.diagnostic(`up ${upMs} ms after degraded; states ${log.states('orders', deletedAt).join(' ')}`);
      assert.ok(!log.states('orders', deletedAt).includes('down'), 'a cancelled consumer never reads the connection down');
      const declared = await withAdmin(rabbit, (channel) => channel.checkQueue(queue));
      assert.equal(declared.queue, queue, 'the queue is declared again');
      assert.equal(declared.consumerCount, 1, 'the consumer is made again');
      await publishUntilReceived(rabbit, queue, received, `after cancel ${unique()}`, 'orders');
    } finally {
      log.stop();
      await app.close();
    }
  });

  it('a consumer whose queue does not exist (no assert): degraded with the reason, never down; up once the queue is made', async (t) => {
    const queue = `e2e.missing.${unique()}`;
    const received: Received[] = [];
    const since = now();
    const app = await startOrders(rabbit, recordingConsumer(queue, received, { assert: undefined }));
    const log = new StateLog(app, ['orders']);
    try {
      await app.waitFor('orders', (s) => s.state === 'degraded', 20_000);
      await sleep(3 * INTERVAL_MS);
      const snapshot = app.snapshot('orders');
      t.diagnostic(`state ${snapshot.state}: ${snapshot.reason}; states ${log.states('orders', since).join(' ')}`);
      assert.equal(snapshot.state, 'degraded', 'still degraded three intervals later');
      assert.match(snapshot.reason, new RegExp(queue.replace(/\./g, '\\.')));
      assert.match(snapshot.reason, /404|NOT.FOUND|not exist|no queue/i);
      assert.ok(!log.states('orders').some((s) => s === 'down' || s === 'reconnecting'), `never down: ${log.states('orders').join(' ')}`);
      assert.equal((await app.health()).status, 200, 'degraded still serves');
      const madeAt = now();
      await withAdmin(rabbit, (channel) => channel.assertQueue(queue, { durable: false }));
      await log.waitFor('orders', 'up', madeAt, 2 * INTERVAL_MS + MARGIN_MS);
      await publishUntilReceived(rabbit, queue, received, `once made ${unique()}`, 'orders');
    } finally {
      log.stop();
      await app.close();
      await withAdmin(rabbit, (channel) => channel.deleteQueue(queue)).catch(() => undefined);
    }
  });

  it('onMessage that throws: the process lives, the message is NACKed and redelivered (redelivered: true) about a second later; one that resolves: acked, nothing left nor redelivered after close', async (t) => {
    const queue = `e2e.handler.${unique()}`;
    const received: Received[] = [];
    let throws = 1;
    const app = await startOrders(rabbit, {
      queue,
      assert: { durable: false },
      onMessage: async (message: ConsumeMessage) => {
        received.push({ body: message.content.toString(), redelivered: message.fields.redelivered, at: now() });
        if (message.content.toString() === 'poison' && throws-- > 0) throw new Error('the handler failed');
      },
    });
    try {
      await app.waitFor('orders', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 20_000);
      await publish(rabbit, queue, 'poison');
      await waitUntil(() => received.filter((r) => r.body === 'poison').length >= 2, 10_000, 'the failed message redelivered');
      const [first, second] = received.filter((r) => r.body === 'poison');
      const gap = Math.round(second!.at - first!.at);
      t.diagnostic(`poison: first redelivered=${first!.redelivered}, again after ${gap} ms redelivered=${second!.redelivered}`);
      assert.deepEqual([first!.redelivered, second!.redelivered], [false, true]);
      assert.ok(gap >= 700 && gap <= 5_000, `redelivered ${gap} ms later, about a second`);
      for (let i = 0; i < 5; i++) await publish(rabbit, queue, `fine ${i}`);
      await waitUntil(() => received.filter((r) => r.body.startsWith('fine')).length >= 5, 10_000, 'the five messages handled');
      assert.equal(app.snapshot('orders').state, 'up', 'a throwing handler leaves the connection up');
      await sleep(500);
      assert.equal((await withAdmin(rabbit, (channel) => channel.checkQueue(queue))).messageCount, 0, 'nothing ready in the queue');
    } finally {
      await app.close();
    }
    // An unacked message goes back to the queue when its channel closes: none may come back.
    await sleep(300);
    const left = await withAdmin(rabbit, async (channel) => {
      const count = (await channel.checkQueue(queue)).messageCount;
      await channel.deleteQueue(queue);
      return count;
    });
    assert.equal(left, 0, 'every handled message was acked: none back in the queue after close');
    assert.equal(received.filter((r) => r.body.startsWith('fine')).length, 5, 'each handled once');
  });
});

describe('AMQP kind, consumers: prefetch, noAck, handlers at shutdown', () => {
  it('prefetch 1: one handler at a time, every message handled and acked', async () => {
    const queue = `e2e.prefetch.${unique()}`;
    let running = 0;
    let most = 0;
    const done: string[] = [];
    const app = await startOrders(rabbit, {
      queue,
      assert: { durable: false },
      prefetch: 1,
      onMessage: async (message: ConsumeMessage) => {
        most = Math.max(most, ++running);
        await sleep(150);
        running--;
        done.push(message.content.toString());
      },
    });
    try {
      await app.waitFor('orders', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 20_000);
      for (let i = 0; i < 4; i++) await publish(rabbit, queue, `job ${i}`);
      await waitUntil(() => done.length === 4, 10_000, 'four jobs handled');
      assert.equal(most, 1, 'never two handlers at once with prefetch 1');
    } finally {
      await app.close();
    }
    const left = await withAdmin(rabbit, async (channel) => {
      const count = (await channel.checkQueue(queue)).messageCount;
      await channel.deleteQueue(queue);
      return count;
    });
    assert.equal(left, 0, 'all acked');
  });

  it('noAck: a handler that throws is not NACKed nor redelivered (the broker counted it delivered)', async () => {
    const queue = `e2e.noack.${unique()}`;
    const received: Received[] = [];
    const app = await TestApp.start({
      health: {
        shutdown: { timeoutMs: SHUTDOWN_MS },
        connections: [
          amqpConnection({
            name: 'orders',
            url: rabbit.amqpUrl,
            consumers: [
              recordingConsumer(queue, received, {
                noAck: true,
                onMessage: (message: ConsumeMessage) => {
                  received.push({ body: message.content.toString(), redelivered: message.fields.redelivered, at: now() });
                  throw new Error('the handler failed');
                },
              }),
            ],
          }),
        ],
      },
    });
    try {
      await app.waitFor('orders', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 20_000);
      await publish(rabbit, queue, 'once');
      await waitUntil(() => received.length >= 1, 5_000, 'delivered');
      await sleep(2_500);
      assert.deepEqual(
        received.map((r) => r.body),
        ['once'],
        'delivered once, never again',
      );
      assert.equal(app.snapshot('orders').state, 'up', 'the connection is not harmed (a NACK on a noAck channel would close it: 406 PRECONDITION_FAILED unknown delivery tag)');
    } finally {
      await app.close();
      await withAdmin(rabbit, (channel) => channel.deleteQueue(queue)).catch(() => undefined);
    }
  });

  it('app.close() lets a handler in flight finish: its message is acked, not delivered twice', async (t) => {
    const queue = `e2e.inflight.${unique()}`;
    let started = 0;
    let finished = 0;
    const app = await startOrders(rabbit, {
      queue,
      assert: { durable: false },
      onMessage: async () => {
        started++;
        await sleep(400);
        finished++;
      },
    });
    let closeMs = 0;
    try {
      await app.waitFor('orders', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 20_000);
      await publish(rabbit, queue, 'in flight');
      await waitUntil(() => started === 1, 5_000, 'the handler started');
    } finally {
      const closingAt = now();
      await app.close();
      closeMs = Math.round(now() - closingAt);
    }
    t.diagnostic(`app.close() took ${closeMs} ms with a 400 ms handler in flight`);
    assert.equal(finished, 1, 'the handler finished before close returned');
    const left = await withAdmin(rabbit, async (channel) => {
      const count = (await channel.checkQueue(queue)).messageCount;
      await channel.deleteQueue(queue);
      return count;
    });
    assert.equal(left, 0, 'its message was acked before the channel closed');
  });

  it("a handler that never settles, on the app's ChannelModel: app.close() within the deadline, no channel of the package left on the app's connection, the message back in the queue", async (t) => {
    const queue = `e2e.hung.${unique()}`;
    const plain = await amqp.connect(rabbit.amqpUrl, { clientProperties: { connection_name: 'hung-handler-plain' } });
    plain.on('error', () => undefined);
    const before = channelCount(plain);
    let started = 0;
    let app: TestApp | undefined;
    try {
      app = await TestApp.start({
        health: {
          shutdown: { timeoutMs: SHUTDOWN_MS },
          connections: [
            amqpConnection({
              name: 'orders',
              connection: plain,
              consumers: [{ queue, assert: { durable: false }, onMessage: () => (started++, new Promise(() => undefined)) }],
            }),
          ],
        },
      });
      await app.waitFor('orders', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 20_000);
      await publish(rabbit, queue, 'stuck');
      await waitUntil(() => started === 1, 5_000, 'the handler started');
      const closingAt = now();
      const closing = app;
      app = undefined;
      await closing.close();
      const closeMs = Math.round(now() - closingAt);
      await sleep(300);
      const after = channelCount(plain);
      const onBroker = (await brokerConnections(rabbit)).filter((c) => c.name === 'hung-handler-plain');
      const ready = await withAdmin(rabbit, async (channel) => (await channel.checkQueue(queue)).messageCount);
      t.diagnostic(`close ${closeMs} ms; channels on the app's connection before ${before}, after close ${after}; broker ${JSON.stringify(onBroker)}; ready in the queue ${ready}`);
      assert.ok(closeMs < SHUTDOWN_MS + 1_000, `close took ${closeMs} ms`);
      assert.deepEqual(
        { channels: after, brokerChannels: onBroker.map((c) => c.channels), ready },
        { channels: before, brokerChannels: [before], ready: 1 },
        "the package's consumer channel is closed at the deadline: nothing of the package stays on the app's connection, and its unacked message goes back to the queue",
      );
    } finally {
      await app?.close();
      await withAdmin(rabbit, (channel) => channel.deleteQueue(queue)).catch(() => undefined);
      await plain.close().catch(() => undefined);
    }
  });
});

describe('AMQP kind: no harm to the app\'s connections', () => {
  it('after app.close() the ACM, the recovering model and a plain ChannelModel are still connected and usable, without the package\'s listeners or channels; the owned connection is gone from the broker', async (t) => {
    const manager = connectManager([rabbit.amqpUrl], acmOptions('noharm-acm'));
    const wrapper = manager.createChannel({});
    wrapper.on('error', () => undefined);
    await wrapper.waitForConnect();
    const recovering = (await amqp.connect(rabbit.amqpUrl, {
      recovery: { initialDelay: 100, maxDelay: 1_000 },
      clientProperties: { connection_name: 'noharm-recovering' },
    })) as unknown as Usages['recovering'];
    recovering.on('error', () => undefined);
    const plain = await amqp.connect(rabbit.amqpUrl, { clientProperties: { connection_name: 'noharm-plain' } });
    plain.on('error', () => undefined);
    const watched = { acm: manager as unknown as EventEmitter, recovering: recovering as EventEmitter, plain: plain as EventEmitter };
    const models = () => ({ acm: manager.connection as ChannelModel, recovering: currentModelOf(recovering)!, plain });
    const emitters = () => ({ ...watched, ...Object.fromEntries(Object.entries(models()).flatMap(([k, m]) => [[`${k} model`, m], [`${k} connection`, m.connection as unknown as EventEmitter]])) }) as Record<string, EventEmitter>;
    const listenersOf = () => Object.fromEntries(Object.entries(emitters()).map(([k, e]) => [k, listeners(e)]));
    const channelsOf = () => Object.fromEntries(Object.entries(models()).map(([k, m]) => [k, channelCount(m)]));
    const beforeListeners = listenersOf();
    const beforeChannels = channelsOf();
    const modelsBefore = models();
    const queues = { acm: `e2e.noharm.acm.${unique()}`, recovering: `e2e.noharm.rec.${unique()}`, plain: `e2e.noharm.plain.${unique()}` };
    let app: TestApp | undefined;
    try {
      app = await TestApp.start({
        health: {
          shutdown: { timeoutMs: SHUTDOWN_MS },
          connections: [
            amqpConnection({ name: 'acm', connection: manager }),
            amqpConnection({ name: 'recovering', connection: recovering, consumers: [recordingConsumer(queues.recovering, [])] }),
            amqpConnection({ name: 'plain', connection: plain, consumers: [recordingConsumer(queues.plain, [])] }),
            amqpConnection({ name: 'owned', url: rabbit.amqpUrl, socketOptions: { clientProperties: { connection_name: 'noharm-owned' } } }),
          ],
        },
      });
      for (const name of ['acm', 'recovering', 'plain', 'owned']) await app.waitFor(name, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 20_000);
      await sleep(INTERVAL_MS);
      const whileWatched = channelsOf();
      const watchedOnBroker = (await brokerConnections(rabbit)).filter((c) => c.name.startsWith('noharm'));
      t.diagnostic(`while watched: channels ${JSON.stringify(whileWatched)} (before ${JSON.stringify(beforeChannels)}); broker ${JSON.stringify(watchedOnBroker)}`);
      assert.equal(watchedOnBroker.filter((c) => c.name === 'noharm-owned').length, 1, 'the owned connection is on the broker, named by its socketOptions');
      const closingAt = now();
      const closing = app;
      app = undefined;
      await closing.close();
      const closeMs = Math.round(now() - closingAt);
      t.diagnostic(`app.close() took ${closeMs} ms`);
      assert.ok(closeMs < SHUTDOWN_MS + 1_000, `close within the shutdown deadline: ${closeMs} ms`);

      await sleep(200);
      assert.deepEqual(models(), modelsBefore, 'the same amqplib connections as before: none closed or re-made');
      assert.deepEqual(listenersOf(), beforeListeners, "the package left no listener on the app's objects");
      assert.deepEqual(channelsOf(), beforeChannels, "the package left no channel on the app's connections (client side)");
      const onBroker = (await brokerConnections(rabbit)).filter((c) => c.name.startsWith('noharm'));
      t.diagnostic(`after close, broker: ${JSON.stringify(onBroker)}`);
      assert.deepEqual(
        Object.fromEntries(onBroker.map((c) => [c.name, c.channels]).sort()),
        Object.fromEntries(
          [
            ['noharm-acm', beforeChannels.acm],
            ['noharm-recovering', beforeChannels.recovering],
            ['noharm-plain', beforeChannels.plain],
          ].sort(),
        ),
        "on the broker: the owned connection is gone, the app's three are there with their own channels only",
      );
      assert.equal(manager.isConnected(), true);
      // Each connection still works: publish and consume through it.
      const roundTrip = async (label: string, channel: amqp.Channel, queue: string) => {
        await channel.assertQueue(queue, { durable: false });
        const got: string[] = [];
        await channel.consume(queue, (m) => m && got.push(m.content.toString()), { noAck: true });
        channel.sendToQueue(queue, Buffer.from(`still works ${label}`));
        await waitUntil(() => got.includes(`still works ${label}`), 5_000, `${label}: a message through the app's connection after close`);
      };
      const recoveringChannel = await recovering.createChannel();
      const plainChannel = await plain.createChannel();
      await roundTrip('recovering', recoveringChannel, queues.recovering);
      await roundTrip('plain', plainChannel, queues.plain);
      const acmGot: string[] = [];
      await wrapper.addSetup((channel: ConfirmChannel) => channel.assertQueue(queues.acm, { durable: false }));
      await wrapper.consume(queues.acm, (m) => {
        acmGot.push(m.content.toString());
        wrapper.ack(m);
      });
      await wrapper.sendToQueue(queues.acm, Buffer.from('still works acm'));
      await waitUntil(() => acmGot.includes('still works acm'), 5_000, "acm: a message through the app's manager after close");
      for (const [queue, channel] of [
        [queues.recovering, recoveringChannel],
        [queues.plain, plainChannel],
      ] as const) {
        await channel.deleteQueue(queue);
        await channel.close();
      }
    } finally {
      await app?.close();
      await Promise.race([Promise.all([manager.close(), recovering.close(), plain.close()]).catch(() => undefined), sleep(2_000)]);
    }
  });

  it('app.close() finishes within the shutdown deadline while the broker is blackholed (owned and watched through the proxy)', async (t) => {
    const proxy = await ChaosProxy.start(rabbit.host, rabbit.amqpPort);
    const manager = connectManager([amqpUrl(proxy.host, proxy.port)], acmOptions('blackholed-acm'));
    const wrapper = manager.createChannel({});
    wrapper.on('error', () => undefined);
    let app: TestApp | undefined;
    try {
      await wrapper.waitForConnect();
      app = await TestApp.start({
        health: {
          shutdown: { timeoutMs: SHUTDOWN_MS },
          connections: [
            amqpConnection({ name: 'owned', url: amqpUrl(proxy.host, proxy.port), consumers: [recordingConsumer(`e2e.blackholed.${unique()}`, [])] }),
            amqpConnection({ name: 'acm', connection: manager }),
          ],
        },
      });
      for (const name of ['owned', 'acm']) await app.waitFor(name, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 20_000);
      proxy.blackhole();
      const closingAt = now();
      await app.close();
      app = undefined;
      const closeMs = Math.round(now() - closingAt);
      t.diagnostic(`app.close() with the broker blackholed took ${closeMs} ms (shutdown.timeoutMs ${SHUTDOWN_MS})`);
      assert.ok(closeMs < SHUTDOWN_MS + 1_000, `close took ${closeMs} ms`);
    } finally {
      await app?.close();
      await Promise.race([manager.close().catch(() => undefined), sleep(1_000)]);
      (manager.connection as unknown as { connection?: { stream?: { destroy(e: Error): void } } } | undefined)?.connection?.stream?.destroy(new Error('test cleanup'));
      await proxy.close();
    }
  });
});

describe('AMQP kind: the package\'s own connection closed by force', () => {
  it('app.close() while the broker is blackholed: within the deadline, and no timer of amqplib (heartbeats) left running', async (t) => {
    const proxy = await ChaosProxy.start(rabbit.host, rabbit.amqpPort);
    let app: TestApp | undefined;
    try {
      const baseline = activeHandles();
      app = await TestApp.start({
        health: { shutdown: { timeoutMs: SHUTDOWN_MS }, connections: [amqpConnection({ name: 'owned', url: amqpUrl(proxy.host, proxy.port) })] },
      });
      await app.waitFor('owned', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 20_000);
      proxy.blackhole();
      const closingAt = now();
      const closing = app;
      app = undefined;
      await closing.close();
      const closeMs = Math.round(now() - closingAt);
      await sleep(100);
      const leaked = leakedHandles(baseline);
      t.diagnostic(`close ${closeMs} ms; handles more than before the app: ${JSON.stringify(leaked)}`);
      assert.ok(closeMs < SHUTDOWN_MS + 1_000, `close took ${closeMs} ms`);
      // The proxy still holds its two sockets of the link (blackholed, it forwards no FIN): only timers are checked.
      assert.equal(leaked.Timeout, undefined, 'no timer left: the forced close stopped amqplib\'s heartbeat timers');
    } finally {
      await app?.close();
      await proxy.close();
    }
  });
});

describe('AMQP kind: a resource alarm (the broker blocks publishers)', () => {
  it('memory alarm on the package\'s own publishing connection: degraded with the broker\'s reason, never down; up once the alarm clears, one connection on the broker', async (t) => {
    const app = await TestApp.start({
      health: {
        shutdown: { timeoutMs: SHUTDOWN_MS },
        connections: [amqpConnection({ name: 'owned', url: rabbit.amqpUrl, probe: 'publish', socketOptions: { clientProperties: { connection_name: 'alarm-owned' } } })],
      },
    });
    const log = new StateLog(app, ['owned']);
    try {
      await app.waitFor('owned', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 20_000);
      const alarmAt = now();
      // A watermark of 0 sets the memory alarm off at once: RabbitMQ blocks every connection that publishes.
      await rabbit.ctl(['set_vm_memory_high_watermark', '0']);
      await sleep(3 * INTERVAL_MS + MARGIN_MS);
      const during = app.snapshot('owned');
      const statesDuring = log.states('owned', alarmAt);
      const degraded = log.first('owned', 'degraded', alarmAt);
      const clearedAt = now();
      await rabbit.ctl(['set_vm_memory_high_watermark', '0.4']);
      const upMs = await log.waitFor('owned', 'up', clearedAt, BOUND_MS + MARGIN_MS + 10_000).then(
        (ms) => ms,
        () => -1,
      );
      await sleep(INTERVAL_MS);
      const onBroker = (await brokerConnections(rabbit)).filter((c) => c.name === 'alarm-owned');
      t.diagnostic(
        `during the alarm: states ${statesDuring.join(' ')}; ${during.state}: ${during.reason} / ${during.lastError}; after it cleared: up after ${upMs} ms, ${onBroker.length} connection(s) of the package on the broker`,
      );
      assert.deepEqual(
        {
          degradedReason: /block/i.test(degraded?.reason ?? ''),
          neverDown: statesDuring.filter((s) => s !== 'degraded' && s !== 'up'),
          upAfter: upMs >= 0,
          connections: onBroker.length,
        },
        { degradedReason: true, neverDown: [], upAfter: true, connections: 1 },
        'a blocked broker reads degraded with its reason, never down (the connection still serves consumers); up again after, with one connection',
      );
    } finally {
      await rabbit.ctl(['set_vm_memory_high_watermark', '0.4']).catch(() => undefined);
      log.stop();
      await app.close();
    }
  });
});

describe('AMQP kind, a plain amqplib ChannelModel handed in', () => {
  it('up while open; after a kick it reads down and stays down (never reopened), the reason saying the app\'s connection closed', async (t) => {
    const plain = await amqp.connect(rabbit.amqpUrl, { clientProperties: { connection_name: 'plain-kicked' } });
    plain.on('error', () => undefined);
    const app = await TestApp.start({ health: { shutdown: { timeoutMs: SHUTDOWN_MS }, connections: [amqpConnection({ name: 'plain', connection: plain })] } }).catch(async (error: Error) => {
      await plain.close().catch(() => undefined);
      throw error;
    });
    const log = new StateLog(app, ['plain']);
    try {
      await app.waitFor('plain', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 20_000);
      assert.equal(app.registry.get('plain').client(), plain);
      const kickAt = now();
      assert.equal(await kickNamed(rabbit, 'plain-kicked'), 1);
      const downMs = await log.waitFor('plain', 'down', kickAt, MARGIN_MS + 5_000);
      await sleep(3 * INTERVAL_MS);
      const snapshot = app.snapshot('plain');
      const states = log.states('plain', kickAt);
      t.diagnostic(`down after ${downMs} ms (kick included); then ${states.join(' ')}; now ${snapshot.state}: ${snapshot.reason} / ${snapshot.lastError}`);
      assert.ok(!states.includes('up') && !states.includes('degraded'), `never up again: ${states.join(' ')}`);
      assert.ok(['down', 'reconnecting', 'failed'].includes(snapshot.state), snapshot.state);
      assert.match(`${snapshot.reason} ${snapshot.lastError ?? ''}`, /clos/i);
      assert.match(`${snapshot.reason} ${snapshot.lastError ?? ''}`, /app|own|reopen|never/i, 'the reason says it is the app\'s connection, which the package cannot reopen');
      assert.equal((await brokerConnections(rabbit)).filter((c) => c.name === 'plain-kicked').length, 0, 'the package opened no connection in its place');
    } finally {
      log.stop();
      await app.close();
      await plain.close().catch(() => undefined);
    }
  });
});

describe('AMQP kind: @MonitorConnection on a provider property holding an ACM, and a provider token as `connection`', () => {
  it('both up, the handles give the app\'s objects; after a kick of both they are up again', async (t) => {
    const managers: AmqpConnectionManager[] = [];
    @Injectable()
    class Messaging {
      @MonitorConnection({ name: 'decorated', kind: 'amqp', ...timing } as unknown as MonitorConnectionOptions)
      readonly manager = connectManager([rabbit.amqpUrl], acmOptions('decorated-acm'));

      constructor() {
        managers.push(this.manager);
      }
    }
    const tokenModel = await amqp.connect(rabbit.amqpUrl, { recovery: { initialDelay: 100, maxDelay: 1_000 }, clientProperties: { connection_name: 'token-recovering' } });
    (tokenModel as unknown as EventEmitter).on('error', () => undefined);
    let app: TestApp | undefined;
    let log: StateLog | undefined;
    try {
      app = await TestApp.start({
        providers: [Messaging, { provide: 'APP_AMQP', useValue: tokenModel }],
        health: { shutdown: { timeoutMs: SHUTDOWN_MS }, connections: [amqpConnection({ name: 'by-token', connection: 'APP_AMQP' })] },
      });
      log = new StateLog(app, ['decorated', 'by-token']);
      for (const name of ['decorated', 'by-token']) await app.waitFor(name, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 20_000);
      assert.equal(managers.length, 1);
      assert.equal(app.registry.get('decorated').client(), managers[0]);
      assert.equal(app.registry.get('by-token').client(), tokenModel);
      const kickAt = now();
      await kickNamed(rabbit, 'decorated-acm');
      await kickNamed(rabbit, 'token-recovering');
      for (const name of ['decorated', 'by-token']) {
        const downMs = await log.waitFor(name, 'down', kickAt, MARGIN_MS + 10_000);
        const upMs = await log.waitFor(name, 'up', log.first(name, 'down', kickAt)!.at, RECOVER_MS);
        t.diagnostic(`${name}: down ${downMs} ms after the kicks began, up ${upMs} ms later`);
      }
    } finally {
      log?.stop();
      await app?.close();
      await Promise.race([Promise.all(managers.map((m) => m.close())).catch(() => undefined), sleep(2_000)]);
      await Promise.race([(tokenModel as unknown as { close(): Promise<void> }).close().catch(() => undefined), sleep(2_000)]);
    }
  });
});
