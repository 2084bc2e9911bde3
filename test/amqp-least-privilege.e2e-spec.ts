/**
 * The AMQP kind on a least-privilege RabbitMQ user: configure only on `^orders\..*`, write and read on
 * everything, as an app that declares its own `orders.*` queues is given. The package's beat queue (a
 * server-named `amq.gen-*` queue) is refused to such a user with 403 ACCESS_REFUSED; the app itself works.
 * The health check must not make an outage of that: each of the three ways an app holds the connection (its
 * amqplib ChannelModel, its amqp-connection-manager, the package's own connection) reads up and stays up,
 * after one refused declare per connection, not one per beat, and real faults are still read down within the
 * bound. A fourth usage, the package's own connection of a user allowed its queue but no write on the default
 * exchange, reads up too (its publish probe is refused). Each usage goes through a chaos proxy of its own.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { connect as connectManager, type AmqpConnectionManager } from 'amqp-connection-manager';
import type { ConnectionDefinition } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import type { RabbitMqServer } from './kit/rabbitmq.server.js';
import { sharedRabbitMq } from './kit/shared-servers.js';
import { StateLog } from './kit/state-log.js';
import { TestApp } from './kit/test-app.js';

const INTERVAL_MS = 1_500;
const TIMEOUT_MS = 600;
const BOUND_MS = INTERVAL_MS + TIMEOUT_MS;
const MARGIN_MS = 2_000;
const RECOVER_MS = 20_000;
/** "Stays up": this many beat intervals without leaving up. */
const STAY_UP_INTERVALS = 12;
const timing = {
  heartbeat: { intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, connectTimeoutMs: 2_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 1_000, maxAttempts: Infinity },
};
const now = () => performance.timeOrigin + performance.now();
const unique = () => randomBytes(4).toString('hex');

/** 'publisher': the package's own connection of a user allowed its queue but refused a publish to the default exchange. */
type Usage = 'model' | 'acm' | 'owned' | 'publisher';
const USAGES: readonly Usage[] = ['model', 'acm', 'owned', 'publisher'];
/** The usages that come back after a fault: amqplib never reopens a plain ChannelModel, nor does the package. */
const RECOVERING: readonly Usage[] = ['acm', 'owned', 'publisher'];

const USER = `orders-app-${unique()}`;
const PASSWORD = `pw-${unique()}`;
const urlThrough = (proxy: ChaosProxy, user = USER) => `amqp://${user}:${PASSWORD}@${proxy.host}:${proxy.port}`;
/** Configure and read on everything, write only on `orders.*` exchanges: the default exchange is refused. */
const WRITER = `orders-writer-${unique()}`;

/** The broker's log lines that tell a refusal to this file's users. */
async function refusalsLogged(rabbit: RabbitMqServer): Promise<string[]> {
  const dir = path.join(rabbit.dir, 'log');
  const files = (await readdir(dir)).filter((name) => name.endsWith('.log') && !name.includes('upgrade'));
  const lines = (await Promise.all(files.map((name) => readFile(path.join(dir, name), 'utf8')))).join('\n').split('\n');
  return lines.filter((line) => (line.includes(`'${USER}'`) || line.includes(`'${WRITER}'`)) && /access_refused|ACCESS_REFUSED/.test(line));
}

let rabbit: RabbitMqServer;
let model: ChannelModel | undefined;
let manager: AmqpConnectionManager | undefined;
const proxies = new Map<Usage, ChaosProxy>();
let app: TestApp | undefined;
let log: StateLog;
let startedAt = 0;

before(async () => {
  rabbit = await sharedRabbitMq();
  await rabbit.ctl(['add_user', USER, PASSWORD]);
  await rabbit.ctl(['set_permissions', '-p', '/', USER, '^orders\\..*', '.*', '.*']);
  await rabbit.ctl(['add_user', WRITER, PASSWORD]);
  await rabbit.ctl(['set_permissions', '-p', '/', WRITER, '.*', '^orders\\..*', '.*']);
  for (const usage of USAGES) proxies.set(usage, await ChaosProxy.start(rabbit.host, rabbit.amqpPort));
  model = await amqp.connect(urlThrough(proxies.get('model')!), { clientProperties: { connection_name: 'lp-model' } });
  model.on('error', () => undefined);
  // The app's own use of its permission works: the user is not broken, only restricted.
  const channel = await model.createChannel();
  await channel.assertQueue(`orders.lp.${unique()}`, { exclusive: true });
  await channel.close();
  manager = connectManager([urlThrough(proxies.get('acm')!)], {
    heartbeatIntervalInSeconds: 1,
    reconnectTimeInSeconds: 1,
    connectionOptions: { timeout: 2_000, clientProperties: { connection_name: 'lp-acm' } },
  });
  const connections = [
    { kind: 'amqp', name: 'model', connection: model, ...timing },
    { kind: 'amqp', name: 'acm', connection: manager, ...timing },
    { kind: 'amqp', name: 'owned', url: urlThrough(proxies.get('owned')!), socketOptions: { clientProperties: { connection_name: 'lp-owned' } }, ...timing },
    { kind: 'amqp', name: 'publisher', url: urlThrough(proxies.get('publisher')!, WRITER), ...timing },
  ] as unknown as ConnectionDefinition[];
  startedAt = now();
  app = await TestApp.start({ health: { shutdown: { timeoutMs: 1_000 }, connections } });
  log = new StateLog(app, USAGES);
});

after(async () => {
  log?.stop();
  await app?.close();
  await Promise.race([Promise.all([manager?.close(), model?.close()]).catch(() => undefined), sleep(2_000)]);
  for (const proxy of proxies.values()) await proxy.close();
  if (rabbit && !rabbit.isRunning()) await rabbit.startAgain();
  for (const user of [USER, WRITER]) await rabbit?.ctl(['delete_user', user]).catch(() => undefined);
});

/** Up within 20 s of the start, then never out of up for 12 beat intervals, beating all along. */
async function staysUp(t: TestContext, usage: Usage): Promise<void> {
  const upAfter = await log.waitFor(usage, 'up', startedAt, 20_000).catch((error: Error) => {
    const { state, reason, lastError } = app!.snapshot(usage);
    throw new Error(`${error.message}; ${JSON.stringify({ state, reason, lastError })}`);
  });
  const upAt = log.first(usage, 'up', startedAt)!.at;
  const until = upAt + STAY_UP_INTERVALS * INTERVAL_MS;
  await sleep(Math.max(0, until - now()));
  const snapshot = app!.snapshot(usage);
  t.diagnostic(`${usage}: up ${upAfter} ms after the start; ${log.beats(usage, upAt).length} beats in ${STAY_UP_INTERVALS} intervals; reason ${JSON.stringify(snapshot.reason)}`);
  assert.deepEqual(log.states(usage, upAt + 1), [], `${usage} never left up`);
  assert.equal(snapshot.state, 'up');
  assert.ok(log.beats(usage, upAt).length >= STAY_UP_INTERVALS - 2, `${usage} beat on`);
}

describe('AMQP kind on least-privilege users (no configure permission on amq.gen-* queues; no write permission on the default exchange)', () => {
  it("an app's amqplib ChannelModel: up, and up for 12 intervals", (t) => staysUp(t, 'model'));

  it("an app's amqp-connection-manager: up, and up for 12 intervals", (t) => staysUp(t, 'acm'));

  it("the package's own connection: up, and up for 12 intervals", (t) => staysUp(t, 'owned'));

  it("the package's own connection (probe 'publish') of a user refused a publish to the default exchange: up, and up for 12 intervals", (t) => staysUp(t, 'publisher'));

  it('health says 200 for all', async () => {
    for (const usage of USAGES) await app!.waitFor(usage, (s) => s.state === 'up', 20_000);
    assert.equal((await app!.health()).status, 200);
  });

  it('one refused declare per connection, not one per beat: the broker logged at most one refusal per usage', async (t) => {
    // Not waiting for up: on a connection read down for the refusal, the count is what tells the churn.
    await sleep(Math.max(0, startedAt + 4 * INTERVAL_MS - now()));
    const first = await refusalsLogged(rabbit);
    await sleep(4 * INTERVAL_MS);
    const later = await refusalsLogged(rabbit);
    t.diagnostic(`refusals logged by the broker: ${first.length}, then ${later.length} after 4 more intervals`);
    assert.ok(first.length <= USAGES.length, `${first.length} refusals for ${USAGES.length} connections:\n${first.slice(0, 4).join('\n')}`);
    assert.equal(later.length, first.length, 'no refusal while beating');
  });

  /** Every usage reads down within the bound of `faultAt`; those that recover read up again after `clear`. */
  async function detectedAndRecovered(t: TestContext, title: string, silent: boolean, inject: () => Promise<void>, clear: () => Promise<void>): Promise<void> {
    for (const usage of RECOVERING) await app!.waitFor(usage, (s) => s.state === 'up', RECOVER_MS);
    // The app's plain ChannelModel is up until a fault ends it for good (amqplib never reopens it).
    const watched = USAGES.filter((usage) => app!.snapshot(usage).state === 'up');
    const faultAt = now();
    await inject();
    const injectMs = now() - faultAt;
    for (const usage of watched) {
      const elapsed = await log.waitFor(usage, 'down', faultAt, injectMs + BOUND_MS + MARGIN_MS + 5_000);
      t.diagnostic(`${title} · ${usage}: down after ${elapsed} ms (bound ${BOUND_MS} ms, injected in ${Math.round(injectMs)} ms): ${log.first(usage, 'down', faultAt)!.reason}`);
      assert.ok(elapsed <= injectMs + BOUND_MS + MARGIN_MS, `${usage} down after ${elapsed} ms`);
      if (!silent) assert.ok(elapsed <= injectMs + MARGIN_MS, `${usage}: a loss the client tells is read at once: ${elapsed} ms`);
    }
    await clear();
    const clearedAt = now();
    for (const usage of RECOVERING) {
      await log.waitFor(usage, 'up', faultAt, RECOVER_MS + (now() - faultAt));
      t.diagnostic(`${title} · ${usage}: up ${Math.round(log.first(usage, 'up', faultAt)!.at - clearedAt)} ms after the fault was lifted`);
    }
    const refusalsBefore = (await refusalsLogged(rabbit)).length;
    await sleep(4 * INTERVAL_MS);
    for (const usage of RECOVERING) assert.deepEqual(log.states(usage, log.first(usage, 'up', faultAt)!.at + 1), [], `${usage} stays up after recovery`);
    assert.equal((await refusalsLogged(rabbit)).length, refusalsBefore, 'no refusal while beating after recovery');
  }

  it('silent blackhole of all: each read down within the bound; ACM and the owned connections up again after', (t) =>
    detectedAndRecovered(
      t,
      'blackhole',
      true,
      async () => proxies.forEach((proxy) => proxy.blackhole()),
      async () => {
        await sleep(3_000);
        proxies.forEach((proxy) => proxy.pass());
      },
    ));

  it('kill -9 of RabbitMQ: each connection still up read down at once; ACM and the owned connections up again after the restart', (t) =>
    detectedAndRecovered(
      t,
      'kill -9',
      false,
      () => rabbit.kill(),
      () => rabbit.startAgain(),
    ));
});
