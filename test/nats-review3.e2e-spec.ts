/**
 * Third hostile review of the NATS kind (the fixes of the second review: NatsDials, sub.drain() at shutdown,
 * tls:// required). Each test is a finding, expected to FAIL on the reviewed code (review-nats-3 at f378179).
 * Real nats-server, private to each test; faults from SIGSTOP and from the chaos proxy.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, createServer, Socket, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect } from 'nats';
import type { ConnectionDefinition } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { NatsServer } from './kit/nats.server.js';
import { waitUntil } from './kit/state-log.js';
import { activeHandles, leakedHandles, TestApp } from './kit/test-app.js';

const timing = {
  heartbeat: { intervalMs: 1_000, timeoutMs: 500, connectTimeoutMs: 3_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: Infinity },
};
const unique = () => randomBytes(4).toString('hex');
const natsConnection = (definition: Record<string, unknown>) => ({ kind: 'nats', ...timing, ...definition }) as unknown as ConnectionDefinition;

/** This process's open sockets to `port`. */
const socketsTo = (port: number) =>
  (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().filter((h) => h instanceof Socket && !h.destroyed && h.remotePort === port).length;

/** A full garbage collection, without --expose-gc on the command line. */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('NATS kind: third review', { timeout: 300_000 }, () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  });
  const natsServer = async () => {
    const server = await NatsServer.start();
    cleanups.push(() => server.stop());
    return server;
  };

  it("the app's onMessage handlers do not run inside the package's dial context: a socket the handler dials while another connection dials is not kept by the package for good (failed: each kept, never collected)", async (t) => {
    const server = await natsServer();
    // The other connection of the app dials into a blackhole: each attempt is a followed connect() of 3 s.
    const proxy = await ChaosProxy.start(server.host, server.port);
    cleanups.push(() => proxy.close());
    proxy.blackhole();
    // A service the handler calls, on a fresh socket each time (an HTTP call without keep-alive, a DB client).
    const service: Server = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => service.close(resolve)));
    const port = (service.address() as { port: number }).port;
    const subject = `work.${unique()}`;
    const dialled: Array<WeakRef<Socket>> = [];
    // net.connect() publishes on 'net.client.socket' (as http.request() does, through it).
    const handler = () =>
      new Promise<void>((resolve) => {
        const socket = netConnect(port, '127.0.0.1');
        dialled.push(new WeakRef(socket));
        socket.on('close', () => resolve()).on('error', () => undefined).resume();
      });
    const app = await TestApp.start({
      health: {
        connections: [
          natsConnection({ name: 'worker', servers: server.url, subscriptions: [{ subject, onMessage: handler }] }),
          natsConnection({ name: 'other', servers: `nats://${proxy.host}:${proxy.port}` }),
        ],
      },
    });
    let closed = false;
    cleanups.push(() => !closed && app.close());
    await app.waitForState('worker', 'up', 5_000);
    const publisher = await connect({ servers: server.url, name: 'publisher' });
    cleanups.push(() => publisher.close());
    // 40 messages over 4 s: most come while 'other' is in one of its 3 s attempts.
    for (let i = 0; i < 40; i++) {
      publisher.publish(subject);
      await publisher.flush();
      await sleep(100);
    }
    await waitUntil(() => dialled.length === 40 && socketsTo(port) === 0, 5_000, 'the handler dialled and closed 40 sockets');
    // The app is still running (its connections live on): what the package holds now, it holds for good.
    for (let i = 0; i < 5; i++) {
      await sleep(50);
      gc();
    }
    const alive = dialled.filter((ref) => ref.deref() !== undefined).length;
    t.diagnostic(`sockets the handler dialled and closed: ${dialled.length}; still reachable after gc: ${alive}`);
    await app.close();
    closed = true;
    assert.equal(alive, 0, "the package keeps no reference to a socket the app's handler dialled (its dials set of the worker's connect())");
  });

  it("the package's own connection with TLS-first, dialled into a stalled server, leaves no socket after app.close() (failed: one socket per attempt, for good)", async (t) => {
    const server = await natsServer();
    const baseline = activeHandles();
    // The kernel accepts, the ClientHello is never answered (nats-server 2.10+ handshake_first, stalled).
    await server.pause();
    cleanups.push(() => server.isRunning() && server.resume());
    const app = await TestApp.start({
      health: {
        shutdown: { timeoutMs: 1_000 },
        connections: [natsConnection({ name: 'own', servers: `tls://${server.host}:${server.port}`, natsOptions: { tls: { handshakeFirst: true } } })],
      },
    });
    let closed = false;
    cleanups.push(() => !closed && app.close());
    // Two attempts time out (connectTimeoutMs 3 s), a third is under way.
    await sleep(7_000);
    await app.close();
    closed = true;
    await sleep(3_500);
    const sockets = socketsTo(server.port);
    t.diagnostic(`left after app.close() + 3.5 s: ${JSON.stringify(leakedHandles(baseline))}; sockets to the server: ${sockets}`);
    server.resume();
    assert.equal(sockets, 0, 'no socket of the package left after app.close(), as for a plain dial (NatsDials destroys those)');
  });
  it("an authenticator's background work started during a connect() that failed is not the package's: its sockets are not destroyed later (failed: each socket it dials while a connect() is followed destroyed)", async (t) => {
    const server = await NatsServer.start({ auth: { token: 'right' } });
    cleanups.push(() => server.stop());
    const proxy = await ChaosProxy.start(server.host, server.port);
    cleanups.push(() => proxy.close());
    // The token service the app's authenticator renews its token from, every 200 ms.
    const service: Server = createServer((socket) => socket.end('right'));
    await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => service.close(resolve)));
    const port = (service.address() as { port: number }).port;
    let token: string | undefined;
    let renewer: NodeJS.Timeout | undefined;
    const renewals = { dialled: 0, answered: 0, cut: 0 };
    const renew = () => {
      renewals.dialled++;
      let answer = '';
      const socket = netConnect(port, '127.0.0.1');
      socket.on('data', (chunk) => (answer += chunk)).on('error', () => undefined);
      socket.on('close', () => {
        if (answer) {
          renewals.answered++;
          token = answer;
        } else renewals.cut++;
      });
    };
    // A common shape: answer with the token at hand, and start renewing it on the first call.
    const authenticator = () => {
      renewer ??= setInterval(renew, 200);
      return { auth_token: token ?? 'none-yet' };
    };
    cleanups.push(() => clearInterval(renewer));
    const app = await TestApp.start({
      health: {
        connections: [
          natsConnection({ name: 'own', servers: server.url, natsOptions: { authenticator } }),
          natsConnection({ name: 'other', servers: `nats://${proxy.host}:${proxy.port}`, natsOptions: { token: 'right' } }),
        ],
      },
    });
    let closed = false;
    cleanups.push(() => !closed && app.close());
    // The first attempt is refused (no token yet); the next, with the renewed token, connects.
    await app.waitForState('own', 'up', 10_000);
    await app.waitForState('other', 'up', 5_000);
    // The other connection's server goes silent: its reconnect attempts (3 s each) are followed connect()s.
    proxy.blackhole();
    await app.waitForState('other', 'down', 5_000);
    const before = { ...renewals };
    await sleep(4_000);
    const during = { dialled: renewals.dialled - before.dialled, answered: renewals.answered - before.answered, cut: renewals.cut - before.cut };
    t.diagnostic(`token renewals over 4 s while 'other' reconnects: ${JSON.stringify(during)}`);
    await app.close();
    closed = true;
    clearInterval(renewer);
    assert.equal(during.cut, 0, "no socket of the app's token renewal is destroyed by the package");
  });
});
