import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@stomp/stompjs';
import { keepStompSubscription, stompSession } from '../lib/index.js';
import type { ConnectionSnapshot, StompConnectionDefinition } from '../lib/index.js';
import { ActiveMqServer } from './kit/activemq.server.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { NetworkNamespace } from './kit/network-namespace.js';
import type { RabbitMqServer } from './kit/rabbitmq.server.js';
import { sharedActiveMq, sharedRabbitMq } from './kit/shared-servers.js';
import { stompPublish, type StompLogin } from './kit/stomp.util.js';
import { activeHandles, leakedHandles, TestApp } from './kit/test-app.js';

// Detection bound under test: intervalMs + timeoutMs, with a generous margin for a busy CI machine.
const INTERVAL_MS = 1_000;
const TIMEOUT_MS = 500;
const BOUND_MS = INTERVAL_MS + TIMEOUT_MS;
const MARGIN_MS = 1_000;
/** A message published once the connection is up again must reach the re-made subscription within this. */
const DELIVERY_MS = 10_000;
const monitorOptions = {
  heartbeat: { intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, connectTimeoutMs: 1_000 },
  reconnect: { initialDelayMs: 200, maxDelayMs: 1_000, maxAttempts: Infinity },
};
const now = () => performance.timeOrigin + performance.now();
const unique = () => randomBytes(4).toString('hex');

/** Where a test's publisher reaches the broker (directly, never through the fault) and how it kills it. */
interface Broker {
  readonly label: string;
  readonly host: string;
  readonly port: number;
  readonly login: StompLogin;
  /** The `server` header it answers CONNECT with. */
  readonly server: RegExp;
  kill(): Promise<void>;
  startAgain(): Promise<void>;
  isRunning(): boolean;
}

function activeMqBroker(server: ActiveMqServer): Broker {
  return {
    label: 'ActiveMQ',
    host: server.host,
    port: server.port,
    login: {},
    server: /^ActiveMQ\/5\./,
    kill: () => server.kill(),
    startAgain: () => server.startAgain(),
    isRunning: () => server.isRunning(),
  };
}

function rabbitMqBroker(server: RabbitMqServer): Broker {
  return {
    label: 'RabbitMQ',
    host: server.host,
    port: server.port,
    login: { login: 'guest', passcode: 'guest' },
    server: /^RabbitMQ\/3\./,
    kill: () => server.kill(),
    startAgain: () => server.startAgain(),
    isRunning: () => server.isRunning(),
  };
}

/** The messages a subscription received, in order. */
class Inbox {
  readonly bodies: string[] = [];
  /** Bodies the broker marked as delivered before (to a session that died without acknowledging them). */
  readonly redelivered = new Set<string>();

  add(body: string, redelivered = false): void {
    this.bodies.push(body);
    if (redelivered) this.redelivered.add(body);
  }

  /** Resolves with the time from `since` until `body` arrived. */
  async waitFor(body: string, since: number, withinMs = DELIVERY_MS): Promise<number> {
    const deadline = now() + withinMs;
    while (!this.bodies.includes(body)) {
      if (now() > deadline) assert.fail(`"${body}" did not arrive within ${withinMs} ms; got ${JSON.stringify(this.bodies)}`);
      await sleep(10);
    }
    return Math.round(now() - since);
  }
}

interface Subject {
  app: TestApp;
  inbox: Inbox;
  /** The queue the connection's `subscriptions` option subscribes to on every session. */
  queue: string;
}

/** A Nest app with one STOMP connection named 'mq' and a client-acknowledged queue subscription. */
async function startApp(broker: Broker, where: Partial<StompConnectionDefinition>, shutdownTimeoutMs = 5_000): Promise<Subject> {
  const inbox = new Inbox();
  const queue = `/queue/ch-test-${unique()}`;
  const app = await TestApp.start({
    health: {
      shutdown: { timeoutMs: shutdownTimeoutMs },
      connections: [
        {
          name: 'mq',
          kind: 'stomp',
          ...broker.login,
          ...where,
          ...monitorOptions,
          subscriptions: [
            {
              destination: queue,
              // A message the broker handed to a session that then died is delivered again, not lost.
              headers: { ack: 'client-individual' },
              onMessage: (message) => {
                inbox.add(message.body, message.headers.redelivered === 'true');
                message.ack();
              },
            },
          ],
        } as StompConnectionDefinition,
      ],
    },
  });
  try {
    await app.waitFor('mq', (s) => s.lastBeatAt !== undefined, 10_000);
  } catch (error) {
    await app.close();
    throw error;
  }
  return { app, inbox, queue };
}

/**
 * Down within the bound of `faultAt`. `injectingMs`: how long the fault's injection took (a rabbitmqctl run),
 * somewhere within which the fault happened, so the bound counts from its end at the latest.
 */
async function expectDetected(t: TestContext, app: TestApp, faultAt: number, fault: string, injectingMs = 0): Promise<ConnectionSnapshot> {
  const { elapsedMs, snapshot } = await app.waitForState('mq', 'down', injectingMs + BOUND_MS + MARGIN_MS + 5_000, faultAt);
  t.diagnostic(`${fault}: down after ${elapsedMs} ms (bound ${BOUND_MS} ms, the injection took ${Math.round(injectingMs)} ms): ${snapshot.reason}`);
  assert.ok(elapsedMs <= injectingMs + BOUND_MS + MARGIN_MS, `${fault} noticed after ${elapsedMs} ms, bound ${BOUND_MS} ms after an injection of ${Math.round(injectingMs)} ms`);
  assert.equal((await app.health()).status, 503);
  return snapshot;
}

/** Up again, then a message published from outside reaches the subscription made again on the new session. */
async function expectRecovered(t: TestContext, broker: Broker, subject: Subject, clearedAt: number, fault: string): Promise<void> {
  const { app, inbox, queue } = subject;
  const { elapsedMs } = await app.waitForState('mq', 'up', 20_000, clearedAt);
  t.diagnostic(`${fault}: up again ${elapsedMs} ms after the fault cleared`);
  assert.equal((await app.health()).status, 200);
  const body = `after ${fault} ${unique()}`;
  const publishedAt = now();
  await stompPublish(broker.host, broker.port, queue, body, broker.login);
  const deliveredMs = await inbox.waitFor(body, publishedAt);
  const again = inbox.redelivered.has(body) ? ', redelivered: the broker had handed it to the dead session first' : '';
  t.diagnostic(`${fault}: a message published after recovery arrived in ${deliveredMs} ms${again}`);
}

function describeBroker(label: string, connect: () => Promise<Broker>, extra?: (broker: () => Broker) => void): void {
  describe(`STOMP over TCP against a real ${label}`, () => {
    let broker: Broker;
    before(async () => (broker = await connect()));
    after(async () => {
      if (broker && !broker.isRunning()) await broker.startAgain();
    });

    it('negotiates heart-beats, reports the round trip, delivers to the subscription and disconnects with a receipt', async (t) => {
      const baseline = activeHandles();
      const subject = await startApp(broker, { host: broker.host, port: broker.port });
      const { app, inbox, queue } = subject;
      let closed = false;
      try {
        const client = app.registry.get('mq').client<Client>();
        const session = stompSession(client);
        assert.ok(session, 'the live client has a recorded session');
        t.diagnostic(`${label}: CONNECTED server ${session.server}, heart-beat asked ${session.requestedHeartBeat}, answered ${session.brokerHeartBeat}`);
        assert.match(session.server ?? '', broker.server);
        assert.equal(session.version, '1.2');
        assert.equal(session.requestedHeartBeat, `${INTERVAL_MS},${INTERVAL_MS}`);
        assert.ok(session.brokerHeartBeat, 'the broker heart-beats');
        assert.deepEqual(session.heartbeat, { outgoingMs: INTERVAL_MS, incomingMs: INTERVAL_MS });

        await app.waitFor('mq', (s) => s.lastRttMs !== undefined, 5_000);
        const { lastRttMs } = app.snapshot('mq');
        t.diagnostic(`${label}: round trip through the broker ${lastRttMs} ms`);
        assert.ok(typeof lastRttMs === 'number' && lastRttMs > 0 && lastRttMs < TIMEOUT_MS);

        const { status, body } = await app.health();
        assert.equal(status, 200);
        const details = body.details.mq as Record<string, unknown>;
        assert.equal(details.kind, 'stomp');
        assert.equal(details.target, `stomp://${broker.host}:${broker.port}`);
        assert.equal(details.state, 'up');
        assert.equal(details.rttMs, lastRttMs);

        const publishedAt = now();
        await stompPublish(broker.host, broker.port, queue, 'hello', broker.login);
        t.diagnostic(`${label}: delivered in ${await inbox.waitFor('hello', publishedAt)} ms`);

        const closingAt = now();
        await app.close();
        closed = true;
        const closeMs = Math.round(now() - closingAt);
        // The forced path would wait out shutdown.timeoutMs (5 s): a quick close means the RECEIPT came.
        t.diagnostic(`${label}: app.close() with DISCONNECT and its receipt took ${closeMs} ms`);
        assert.ok(closeMs < 2_000, `close took ${closeMs} ms`);
        assert.equal(client?.connected, false);
      } finally {
        if (!closed) await app.close();
      }
      await sleep(100);
      assert.deepEqual(leakedHandles(baseline), {}, 'no timer or socket left after app.close()');
    });

    it('kill -9 of the broker: down within the bound, subscriptions made again on the new session after a restart', async (t) => {
      const subject = await startApp(broker, { host: broker.host, port: broker.port });
      const { app } = subject;
      const clients: Array<Client | undefined> = [];
      const watch = app.registry.get('mq').clientChanges$<Client>().subscribe((client) => clients.push(client));
      try {
        const first = clients.at(-1);
        const killedAt = now();
        await broker.kill();
        await expectDetected(t, app, killedAt, `${label} kill`);
        await sleep(1_500); // reconnect attempts meet a closed port
        assert.ok(app.snapshot('mq').reconnectAttempts >= 1);
        const restartedAt = now();
        await broker.startAgain();
        t.diagnostic(`${label}: broker answered again ${Math.round(now() - restartedAt)} ms after startAgain()`);
        await expectRecovered(t, broker, subject, restartedAt, `${label} kill`);
        // What an app watching clientChanges$ sees: the old client, undefined (you may have missed messages), a new one.
        assert.ok(first);
        assert.equal(clients.includes(undefined), true);
        assert.notEqual(clients.at(-1), first);
        assert.equal(clients.at(-1), app.registry.get('mq').client());
      } finally {
        watch.unsubscribe();
        if (!broker.isRunning()) await broker.startAgain();
        await app.close();
      }
    });

    const proxyFaults: Array<{ fault: string; title: string; inject: (proxy: ChaosProxy) => void }> = [
      { fault: 'RST', title: 'a connection reset (RST)', inject: (proxy) => proxy.reset() },
      { fault: 'proxy blackhole', title: 'a silent blackhole (every byte swallowed)', inject: (proxy) => proxy.blackhole() },
      { fault: `latency ${TIMEOUT_MS * 2} ms`, title: 'a slow broker (latency above the deadline)', inject: (proxy) => proxy.latency(TIMEOUT_MS * 2) },
    ];
    for (const { fault, title, inject } of proxyFaults) {
      it(`${title} through the chaos proxy: down within the bound, up once traffic passes again`, async (t) => {
        const proxy = await ChaosProxy.start(broker.host, broker.port);
        const subject = await startApp(broker, { url: `stomp://${proxy.host}:${proxy.port}` });
        const { app } = subject;
        // A subscription made at run time, through the handle, is made again on the new session too.
        const topic = `/topic/ch-test-${unique()}`;
        const runtimeInbox = new Inbox();
        const kept = keepStompSubscription(app.registry.get('mq'), topic, (message) => runtimeInbox.add(message.body));
        try {
          const faultAt = now();
          inject(proxy);
          await expectDetected(t, app, faultAt, `${label} ${fault}`);
          const healedAt = now();
          proxy.pass();
          await expectRecovered(t, broker, subject, healedAt, `${label} ${fault}`);
          const publishedAt = now();
          await stompPublish(broker.host, broker.port, topic, 'to the runtime subscription', broker.login);
          await runtimeInbox.waitFor('to the runtime subscription', publishedAt);
        } finally {
          kept.unsubscribe();
          await app.close();
          await proxy.close();
        }
      });
    }

    it('shutdown while the broker is silent: DISCONNECT waits for its receipt until the deadline, then the socket is dropped', async (t) => {
      const baseline = activeHandles();
      const proxy = await ChaosProxy.start(broker.host, broker.port);
      const { app } = await startApp(broker, { url: `stomp://${proxy.host}:${proxy.port}` }, 1_000);
      try {
        proxy.blackhole();
        const closingAt = now();
        await app.close();
        const closeMs = Math.round(now() - closingAt);
        t.diagnostic(`${label}: app.close() with an unanswered DISCONNECT took ${closeMs} ms (shutdown.timeoutMs 1000)`);
        assert.ok(closeMs >= 900 && closeMs < 2_500, `close took ${closeMs} ms`);
      } finally {
        await proxy.close();
      }
      await sleep(100);
      assert.deepEqual(leakedHandles(baseline), {}, 'no timer or socket left after a forced close');
    });

    extra?.(() => broker);
  });
}

describeBroker('ActiveMQ', async () => activeMqBroker(await sharedActiveMq()));

let rabbit: RabbitMqServer;
describeBroker(
  'RabbitMQ',
  async () => rabbitMqBroker((rabbit = await sharedRabbitMq())),
  (broker) => {
    it('rabbitmqctl close_all_connections (ERROR frame, then FIN): down at once, reconnected', async (t) => {
      const subject = await startApp(broker(), { host: rabbit.host, port: rabbit.port });
      try {
        const closedAt = now();
        await rabbit.closeAllConnections('maintenance window');
        // rabbitmqctl boots an Erlang VM first (1 to 3 s on a busy machine): the broker closes somewhere in that run.
        const snapshot = await expectDetected(t, subject.app, closedAt, 'RabbitMQ close_all_connections', now() - closedAt);
        assert.match(snapshot.reason, /ERROR frame/);
        assert.match(snapshot.reason, /maintenance window/);
        await expectRecovered(t, broker(), subject, closedAt, 'RabbitMQ close_all_connections');
      } finally {
        await subject.app.close();
      }
    });

    it('a refused login (ERROR frame on CONNECT) fails the connect with the reason and no passcode', async (t) => {
      const app = await TestApp.start({
        health: {
          connections: [{ name: 'mq', kind: 'stomp', url: `stomp://guest:not-the-passcode@${rabbit.host}:${rabbit.port}`, ...monitorOptions }],
        },
      });
      try {
        const snapshot = await app.waitFor('mq', (s) => s.lastError !== undefined, 5_000);
        t.diagnostic(`refused login: ${snapshot.lastError}`);
        assert.match(snapshot.lastError ?? '', /ERROR frame/);
        assert.doesNotMatch(JSON.stringify(await app.health()), /not-the-passcode/);
        assert.equal(app.snapshot('mq').target, `stomp://${rabbit.host}:${rabbit.port}`);
      } finally {
        await app.close();
      }
    });
  },
);

describe('STOMP over WebSocket against a real RabbitMQ (Web-STOMP)', () => {
  let server: RabbitMqServer;
  let broker: Broker;
  before(async () => {
    server = await sharedRabbitMq();
    broker = rabbitMqBroker(server);
  });

  it('negotiates heart-beats, reports the round trip and delivers to the subscription', async (t) => {
    const baseline = activeHandles();
    const subject = await startApp(broker, { url: server.webStompUrl });
    try {
      const session = stompSession(subject.app.registry.get('mq').client());
      assert.match(session?.server ?? '', broker.server);
      assert.deepEqual(session?.heartbeat, { outgoingMs: INTERVAL_MS, incomingMs: INTERVAL_MS });
      await subject.app.waitFor('mq', (s) => s.lastRttMs !== undefined, 5_000);
      t.diagnostic(`WebSocket: round trip through the broker ${subject.app.snapshot('mq').lastRttMs} ms`);
      const details = (await subject.app.health()).body.details.mq as Record<string, unknown>;
      assert.equal(details.target, server.webStompUrl);
      const publishedAt = now();
      await stompPublish(broker.host, broker.port, subject.queue, 'over websocket', broker.login);
      t.diagnostic(`WebSocket: delivered in ${await subject.inbox.waitFor('over websocket', publishedAt)} ms`);
    } finally {
      await subject.app.close();
    }
    await sleep(100);
    assert.deepEqual(leakedHandles(baseline), {}, 'no timer or socket left after app.close()');
  });

  it('a silent blackhole through the chaos proxy: down within the bound, up once traffic passes again', async (t) => {
    const proxy = await ChaosProxy.start(server.host, server.webStompPort);
    const subject = await startApp(broker, { url: `ws://${proxy.host}:${proxy.port}/ws` });
    try {
      const faultAt = now();
      proxy.blackhole();
      await expectDetected(t, subject.app, faultAt, 'WebSocket blackhole');
      const healedAt = now();
      proxy.pass();
      await expectRecovered(t, broker, subject, healedAt, 'WebSocket blackhole');
    } finally {
      await subject.app.close();
      await proxy.close();
    }
  });
});

describe('STOMP over TLS against a real RabbitMQ', () => {
  let server: RabbitMqServer;
  before(async () => (server = await sharedRabbitMq()));

  it('verifies the broker against the given CA, beats through it, and names a certificate it cannot trust', async (t) => {
    const broker = rabbitMqBroker(server);
    const subject = await startApp(broker, { url: `stomp+ssl://127.0.0.1:${server.tlsPort}`, tls: { ca: server.certificate } });
    try {
      assert.equal(subject.app.snapshot('mq').target, `stomp+ssl://127.0.0.1:${server.tlsPort}`);
      await subject.app.waitFor('mq', (s) => s.lastRttMs !== undefined, 5_000);
      t.diagnostic(`TLS: round trip through the broker ${subject.app.snapshot('mq').lastRttMs} ms`);
      const publishedAt = now();
      await stompPublish(broker.host, broker.port, subject.queue, 'over tls', broker.login);
      t.diagnostic(`TLS: delivered in ${await subject.inbox.waitFor('over tls', publishedAt)} ms`);
    } finally {
      await subject.app.close();
    }
    const untrusting = await TestApp.start({
      health: { connections: [{ name: 'mq', kind: 'stomp', host: '127.0.0.1', port: server.tlsPort, tls: true, ...broker.login, ...monitorOptions }] },
    });
    try {
      const snapshot = await untrusting.waitFor('mq', (s) => s.lastError !== undefined, 5_000);
      t.diagnostic(`TLS without the CA: ${snapshot.lastError}`);
      assert.match(snapshot.lastError ?? '', /self[- ]signed certificate/i);
    } finally {
      await untrusting.close();
    }
  });
});

describe('STOMP against ActiveMQ in a network namespace (kernel-level faults)', async () => {
  const reason = await NetworkNamespace.unsupportedReason();
  let namespace: NetworkNamespace;
  let server: ActiveMqServer;
  before(async () => {
    if (reason) return;
    namespace = await NetworkNamespace.create();
    server = await ActiveMqServer.start({ netns: namespace });
  });
  after(async () => {
    await server?.stop();
    await namespace?.destroy();
  });

  // Skipped only where the kernel or the user forbids namespaces; CI runs as root and runs it.
  it('iptables DROP both ways (no FIN, no RST): down within the bound, up after the rules go', { skip: reason }, async (t) => {
    const broker = activeMqBroker(server);
    const subject = await startApp(broker, { host: server.host, port: server.port });
    try {
      const faultAt = now();
      await namespace.blackhole(server.port);
      await expectDetected(t, subject.app, faultAt, 'iptables DROP');
      await sleep(1_500); // reconnects run into the silence too
      const healedAt = now();
      await namespace.heal();
      await expectRecovered(t, broker, subject, healedAt, 'iptables DROP');
    } finally {
      await subject.app.close();
    }
  });
});
