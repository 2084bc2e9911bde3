/**
 * The AMQP kind must never be what hurts the app that installs it: each test here is a finding of a hostile
 * review, shown against the run's real RabbitMQ (a memory alarm raised here is always lifted again) and
 * failing on the adapter before its fix. A broker alarm reads degraded, never down, and never holds up a
 * shutdown; a message that fails every time is dead-lettered rather than spun for ever in front of the
 * queue; consumers take a bounded number of messages at once; the app's recovering model is not flooded
 * with channel requests during an outage; nothing of the package's is left on the app's connection; a
 * connection that lost bytes is replaced while a slow one is kept; a message is dead-lettered only after
 * failing twice here, whatever the broker's redelivered flag says.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import type { ChannelModel } from 'amqplib';
import type { AmqpMessage, ConnectionDefinition, ConnectionEvent } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import type { RabbitMqServer } from './kit/rabbitmq.server.js';
import { sharedRabbitMq } from './kit/shared-servers.js';
import { TestApp } from './kit/test-app.js';
import { waitUntil } from './kit/state-log.js';

const INTERVAL_MS = 500;
const TIMEOUT_MS = 400;
const timing = {
  heartbeat: { intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, connectTimeoutMs: 2_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: Infinity },
};
const unique = () => randomBytes(4).toString('hex');
const amqpConnection = (definition: Record<string, unknown>) => ({ kind: 'amqp', ...timing, ...definition }) as unknown as ConnectionDefinition;


/** Every state a connection of `app` went through, with its reason, from now on. */
function statesOf(app: TestApp, name: string): Array<{ to: string; reason: string }> {
  const seen: Array<{ to: string; reason: string }> = [];
  app.registry.get(name).events$.subscribe((event: ConnectionEvent) => {
    if (event.type === 'state') seen.push({ to: event.to, reason: event.reason });
  });
  return seen;
}

/** The channels open on an amqplib connection (its table of channels, as amqplib keeps it), channel 0 (the connection's own) aside. */
function openChannels(model: ChannelModel): number {
  return ((model.connection as unknown as { channels: unknown[] }).channels ?? []).slice(1).filter(Boolean).length;
}

describe('the AMQP kind does no harm', { timeout: 600_000 }, () => {
  let rabbit: RabbitMqServer;
  const apps: TestApp[] = [];
  const models: Array<{ close(): Promise<void> }> = [];
  const start = async (connections: ConnectionDefinition[]) => {
    const app = await TestApp.start({ health: { connections } });
    apps.push(app);
    return app;
  };
  const queues = async (): Promise<string[]> => (await rabbit.ctl(['list_queues', '--no-table-headers', 'name'])).split('\n').filter(Boolean);

  before(async () => {
    rabbit = await sharedRabbitMq();
  });

  after(async () => {
    await Promise.all(apps.map((app) => app.app.close().catch(() => undefined)));
    await Promise.all(models.map((model) => model.close().catch(() => undefined)));
  });

  it('reads a broker memory alarm degraded with its reason, never down, and shuts down without waiting for the blocked broker', async () => {
    const manager = await amqp.connect(rabbit.amqpUrl);
    manager.on('error', () => undefined);
    models.push(manager);
    const app = await start([
      amqpConnection({ name: 'owned', url: rabbit.amqpUrl }), // no consumers: the beat publishes
      amqpConnection({ name: 'watched', connection: manager, probe: 'publish' }),
    ]);
    await waitUntil(() => ['owned', 'watched'].every((name) => app.snapshot(name).state === 'up'), 10_000, 'both up');
    const owned = statesOf(app, 'owned');
    const watched = statesOf(app, 'watched');
    await rabbit.ctl(['set_vm_memory_high_watermark', '0.0000001']);
    try {
      await waitUntil(() => ['owned', 'watched'].every((name) => app.snapshot(name).state === 'degraded'), 15_000, 'both degraded');
      assert.match(app.snapshot('owned').reason ?? '', /the broker blocks publishing on this connection \(low on memory\)/);
      await sleep(8 * INTERVAL_MS);
      assert.deepEqual([...owned, ...watched].filter(({ to }) => to === 'down'), [], 'never down during the alarm');
      const closing = Date.now();
      await app.app.close();
      assert.ok(Date.now() - closing < 3_000, `closed in ${Date.now() - closing} ms during the alarm`);
    } finally {
      await rabbit.ctl(['set_vm_memory_high_watermark', '0.4']);
    }
  });

  it('dead-letters a message that fails again on its redelivery, so the messages behind it are handled', async () => {
    const queue = `orders-${unique()}`;
    const deadLetters = `${queue}-dead`;
    const admin = await amqp.connect(rabbit.amqpUrl);
    models.push(admin);
    const channel = await admin.createConfirmChannel();
    await channel.assertQueue(deadLetters, { durable: false });
    const handled: string[] = [];
    let poisonAttempts = 0;
    const app = await start([
      amqpConnection({
        name: 'orders',
        url: rabbit.amqpUrl,
        consumers: [
          {
            queue,
            assert: { durable: false, deadLetterExchange: '', deadLetterRoutingKey: deadLetters },
            prefetch: 1,
            onMessage(message: AmqpMessage) {
              const body = message.content.toString();
              if (body === 'poison') {
                poisonAttempts += 1;
                throw new Error('cannot handle this one');
              }
              handled.push(body);
            },
          },
        ],
      }),
    ]);
    await waitUntil(() => app.snapshot('orders').state === 'up', 10_000, 'up');
    for (const body of ['poison', 'a', 'b', 'c']) channel.sendToQueue(queue, Buffer.from(body));
    await channel.waitForConfirms();
    await waitUntil(() => handled.length === 3, 10_000, 'the messages behind the poison one handled');
    assert.deepEqual(handled, ['a', 'b', 'c']);
    assert.equal(poisonAttempts, 2, 'tried once, and once more on its redelivery');
    await waitUntil(async () => (await channel.checkQueue(deadLetters)).messageCount === 1, 5_000, 'the poison message dead-lettered');
    assert.equal((await channel.checkQueue(queue)).messageCount, 0);
    assert.equal(app.snapshot('orders').state, 'up', 'a failing handler is the app\'s, not the connection\'s');
  });

  it('runs at most prefetch (10 by default) handlers at once', async () => {
    const queue = `bulk-${unique()}`;
    let running = 0;
    let peak = 0;
    let done = 0;
    const app = await start([
      amqpConnection({
        name: 'bulk',
        url: rabbit.amqpUrl,
        consumers: [
          {
            queue,
            assert: { durable: false },
            async onMessage() {
              running += 1;
              peak = Math.max(peak, running);
              await sleep(200);
              running -= 1;
              done += 1;
            },
          },
        ],
      }),
    ]);
    await waitUntil(() => app.snapshot('bulk').state === 'up', 10_000, 'up');
    const publisher = await amqp.connect(rabbit.amqpUrl);
    models.push(publisher);
    const channel = await publisher.createConfirmChannel();
    for (let i = 0; i < 60; i += 1) channel.sendToQueue(queue, Buffer.from(String(i)));
    await channel.waitForConfirms();
    await waitUntil(() => done === 60, 20_000, 'all 60 handled');
    assert.ok(peak <= 10, `at most 10 at once, saw ${peak}`);
  });

  it("opens no burst of channels on the app's recovering model when it comes back from an outage", async () => {
    const proxy = await ChaosProxy.start(rabbit.host, rabbit.amqpPort);
    const url = `amqp://guest:guest@${proxy.host}:${proxy.port}`;
    const recovering = await amqp.connect(url, { recovery: { initialDelay: 100, maxDelay: 500 } });
    recovering.on('error', () => undefined);
    models.push(recovering);
    let current: ChannelModel | undefined;
    recovering.on('connect', (model: ChannelModel) => (current = model));
    const app = await start([amqpConnection({ name: 'events', connection: recovering, consumers: [{ queue: `events-${unique()}`, assert: { durable: false }, onMessage: () => undefined }] })]);
    await waitUntil(() => app.snapshot('events').state === 'up', 10_000, 'up');
    // An outage of several seconds: the engine tries again and again meanwhile.
    proxy.refuse();
    proxy.reset();
    await waitUntil(() => app.snapshot('events').state !== 'up', 5_000, 'down');
    await sleep(10_000);
    proxy.pass();
    await waitUntil(() => app.snapshot('events').state === 'up' && current !== undefined, 15_000, 'up again');
    // amqplib's table of channels grows to the most channels open at once and never shrinks: a channel per
    // attempt given up during the outage, all opened when the model comes back, would show here.
    const table = (current as unknown as { connection: { channels: unknown[] } }).connection.channels;
    assert.ok(table.length - 1 <= 3, `at most the beat channel, the consumer's and one more at once; saw ${table.length - 1}`);
    await sleep(1_000);
    assert.equal(openChannels(current as ChannelModel), 2, 'the beat channel and the consumer\'s');
    await app.app.close();
    await proxy.close();
  });

  it("leaves no queue or channel of the package's on the app's connection, also when its beat queue was deleted", async () => {
    const model = await amqp.connect(rabbit.amqpUrl);
    model.on('error', () => undefined);
    models.push(model);
    const before = new Set(await queues());
    const added = async () => (await queues()).filter((name) => !before.has(name));
    for (let round = 0; round < 2; round += 1) {
      const app = await start([amqpConnection({ name: 'plain', connection: model })]); // probe 'declare'
      await waitUntil(() => app.snapshot('plain').state === 'up', 10_000, 'up');
      await app.app.close();
      await waitUntil(async () => (await added()).length === 0, 5_000, `no queue of the package's left after round ${round + 1}`);
      assert.equal(openChannels(model), 0);
    }
    const app = await start([amqpConnection({ name: 'plain', connection: model })]);
    await waitUntil(() => app.snapshot('plain').state === 'up', 10_000, 'up');
    for (let deletion = 0; deletion < 3; deletion += 1) {
      const [beatQueue] = await added();
      assert.ok(beatQueue, 'the beat queue exists');
      await rabbit.ctl(['delete_queue', beatQueue]);
      await waitUntil(async () => app.snapshot('plain').state === 'up' && (await added()).some((name) => name !== beatQueue), 10_000, 'up on a new beat queue');
    }
    assert.equal(openChannels(model), 1, 'one beat channel, none left behind');
    await app.app.close();
  });

  it("replaces the package's connection that lost bytes, and keeps a slow one", async () => {
    const proxy = await ChaosProxy.start(rabbit.host, rabbit.amqpPort);
    const queue = `work-${unique()}`;
    const received: string[] = [];
    const app = await start([
      amqpConnection({
        name: 'work',
        url: `amqp://guest:guest@${proxy.host}:${proxy.port}`,
        consumers: [{ queue, assert: { durable: false }, onMessage: (message: AmqpMessage) => received.push(message.content.toString()) }],
      }),
    ]);
    const handle = app.registry.get('work');
    await waitUntil(() => handle.snapshot().state === 'up', 10_000, 'up');
    const publisher = await amqp.connect(rabbit.amqpUrl);
    models.push(publisher);
    const channel = await publisher.createConfirmChannel();

    // Slow: every beat late for a while, then on time again, on the same connection.
    const first = handle.client();
    proxy.latency(1_000);
    await waitUntil(() => handle.snapshot().state === 'down' || handle.snapshot().state === 'reconnecting', 5_000, 'down while slow');
    await sleep(3_000);
    proxy.pass();
    await waitUntil(() => handle.snapshot().state === 'up', 10_000, 'up again once fast');
    assert.equal(handle.client(), first, 'the slow connection was kept');

    // Slow on its own flow only, and then fast again: the beats (deadline 400 ms) are late, while the old
    // connection still answers within an attempt's deadline. A channel the app opened on it lives on.
    const appChannel = await (handle.client() as ChannelModel).createChannel();
    let appChannelClosed = false;
    appChannel.on('close', () => (appChannelClosed = true));
    proxy.latency(300);
    await waitUntil(() => handle.snapshot().state !== 'up', 5_000, 'down while slow');
    await sleep(4_000);
    proxy.pass();
    await waitUntil(() => handle.snapshot().state === 'up', 10_000, 'up again once fast');
    await sleep(2 * INTERVAL_MS);
    assert.equal(handle.client(), first, 'the connection slow on its own was kept');
    assert.equal(appChannelClosed, false, "the app's channel on it lives on");

    // Bytes lost both ways for a moment (shorter than the broker's heartbeat timeout): the flow resumes
    // with frames missing, and its beat channel never answers again. A new connection replaces it.
    proxy.blackhole();
    await waitUntil(() => handle.snapshot().state !== 'up', 5_000, 'down in the blackhole');
    await sleep(1_500);
    proxy.pass();
    await waitUntil(() => handle.snapshot().state === 'up', 10_000, 'up on a new connection');
    assert.notEqual(handle.client(), first, 'the connection that lost bytes was replaced');
    channel.sendToQueue(queue, Buffer.from('after'));
    await channel.waitForConfirms();
    await waitUntil(() => received.includes('after'), 5_000, 'the consumer, made again, receives');
    await app.app.close();
    await proxy.close();
  });

  it("requeues a message whose first failure follows a redelivery for another reason (a lost connection)", async () => {
    const proxy = await ChaosProxy.start(rabbit.host, rabbit.amqpPort);
    const queue = `retry-${unique()}`;
    const calls: boolean[] = [];
    let release!: () => void;
    const firstCallHeld = new Promise<void>((resolve) => (release = resolve));
    const app = await start([
      amqpConnection({
        name: 'retry',
        url: `amqp://guest:guest@${proxy.host}:${proxy.port}`,
        consumers: [
          {
            queue,
            assert: { durable: false },
            async onMessage(message: AmqpMessage) {
              calls.push(message.fields.redelivered);
              if (calls.length === 1) return firstCallHeld; // running when the connection is lost
              if (calls.length === 2) throw new Error('a passing failure');
            },
          },
        ],
      }),
    ]);
    await waitUntil(() => app.snapshot('retry').state === 'up', 10_000, 'up');
    const publisher = await amqp.connect(rabbit.amqpUrl);
    models.push(publisher);
    const channel = await publisher.createConfirmChannel();
    channel.sendToQueue(queue, Buffer.from('order 1'));
    await channel.waitForConfirms();
    await waitUntil(() => calls.length === 1, 5_000, 'the handler running');
    proxy.reset();
    release();
    await waitUntil(() => calls.length >= 3, 10_000, 'tried again after its first failure');
    assert.deepEqual(calls.slice(0, 3), [false, true, true]);
    assert.equal((await channel.checkQueue(queue)).messageCount, 0, 'handled, not dropped');
    await app.app.close();
    await proxy.close();
  });

  it("leaves nothing on the app's connection after a blackhole and a slow spell: no listener, no queue of the package's", async () => {
    const proxy = await ChaosProxy.start(rabbit.host, rabbit.amqpPort);
    const model = await amqp.connect(`amqp://guest:guest@${proxy.host}:${proxy.port}`);
    model.on('error', () => undefined);
    models.push(model);
    const connection = model.connection as unknown as { listenerCount(event: string): number };
    const listeners = () => ({ close: connection.listenerCount('close'), blocked: connection.listenerCount('blocked') });
    const before = listeners();
    const queuesBefore = new Set(await queues());
    const app = await start([amqpConnection({ name: 'plain', connection: model })]);
    await waitUntil(() => app.snapshot('plain').state === 'up', 10_000, 'up');
    proxy.blackhole();
    await sleep(1_500);
    proxy.latency(350);
    await sleep(3_000);
    proxy.pass();
    await waitUntil(() => app.snapshot('plain').state === 'up', 15_000, 'up again');
    await app.app.close();
    assert.deepEqual(listeners(), before, "the package's listeners are gone");
    await waitUntil(async () => (await queues()).every((name) => queuesBefore.has(name)), 20_000, "no queue of the package's left");
    await proxy.close();
  });

  it('leaves one waiter at most in a recovering model that was already in an outage when watching began', async () => {
    const proxy = await ChaosProxy.start(rabbit.host, rabbit.amqpPort);
    const recovering = await amqp.connect(`amqp://guest:guest@${proxy.host}:${proxy.port}`, { recovery: { initialDelay: 100, maxDelay: 500 } });
    recovering.on('error', () => undefined);
    models.push(recovering);
    let current: ChannelModel | undefined;
    recovering.on('connect', (model: ChannelModel) => (current = model));
    proxy.refuse();
    proxy.reset();
    await sleep(500);
    const app = await start([amqpConnection({ name: 'late', connection: recovering })]);
    await sleep(6_000);
    const waiters = (recovering as unknown as { _core: { _waiters: unknown[] } })._core._waiters.length;
    assert.ok(waiters <= 1, `at most one channel request waiting in the model, saw ${waiters}`);
    proxy.pass();
    await waitUntil(() => app.snapshot('late').state === 'up' && current !== undefined, 15_000, 'up once it is back');
    await app.app.close();
    await proxy.close();
  });
});
