/**
 * The NATS kind does no harm to the app that installs it: its connections, its messages, its shutdown, its
 * secrets, its promises. One test per finding of the late-flow judge's change (957a28d dropped a flow that
 * brought no byte since the late beat) and of the two hostile reviews; each title says what it failed on.
 * Real nats-server, private to each test; faults from SIGSTOP and from the chaos proxy.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, createServer, Socket, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect as connect3 } from '@nats-io/transport-node';
import { connect, type ConnectionOptions, type NatsConnection } from 'nats';
import { serverAnswersAnew } from '../lib/adapters/nats/nats-side-probe.js';
import type { ConnectionDefinition } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { NatsServer } from './kit/nats.server.js';
import { waitUntil } from './kit/state-log.js';
import { activeHandles, leakedHandles, TestApp } from './kit/test-app.js';
import { RecordingLogger } from './kit/recording-logger.js';

const timing = {
  heartbeat: { intervalMs: 1_000, timeoutMs: 500, connectTimeoutMs: 3_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: Infinity },
};
const RECOVER_MS = 15_000;
const unique = () => randomBytes(4).toString('hex');
const natsConnection = (definition: Record<string, unknown>) => ({ kind: 'nats', ...timing, ...definition }) as unknown as ConnectionDefinition;
const SIDE_PROBE = /^connection-health-probe-/;

/** The library of an app's connection: nats.js 2.x, or 3.x (Nest 12's NATS transport). */
type Library = 'nats' | '@nats-io/transport-node';
const LIBRARIES: readonly Library[] = ['nats', '@nats-io/transport-node'];

/** The app's status events of a connection, by type, as they come (nats.js 2.x never ends the iterator, 3.x only on close: stop() does). */
function statusCounts(connection: NatsConnection): { counts: Record<string, number>; stop(): void } {
  const iterator = connection.status() as AsyncIterable<{ type: string }> & { stop(): void };
  const counts: Record<string, number> = {};
  void (async () => {
    for await (const status of iterator) counts[status.type] = (counts[status.type] ?? 0) + 1;
  })();
  return { counts, stop: () => iterator.stop() };
}

/** This process's open sockets to `port` (a count of handle types alone would mix in other tests' leftovers). */
const socketsTo = (port: number) =>
  (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().filter((h) => h instanceof Socket && !h.destroyed && h.remotePort === port).length;

/** Whether the nats.js connection's socket is a TLS one (nats.js 2.x: protocol.transport.isEncrypted()). */
const encrypted = (connection: NatsConnection) => (connection as unknown as { protocol: { transport: { isEncrypted(): boolean } } }).protocol.transport.isEncrypted();

/** A full garbage collection, without --expose-gc on the command line. */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('NATS kind: no harm', { timeout: 300_000 }, () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  // After each test: an app left running would beat on, and its timers would read as another test's leak.
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  });
  const natsServer = async () => {
    const server = await NatsServer.start();
    cleanups.push(() => server.stop());
    return server;
  };
  const proxyTo = async (server: NatsServer, options: { record?: boolean } = {}) => {
    const proxy = await ChaosProxy.start(server.host, server.port, options);
    cleanups.push(() => proxy.close());
    return proxy;
  };
  const appConnection = async (servers: string, options: ConnectionOptions = {}, library: Library = 'nats') => {
    // A 3.x connection has every method these tests call on a 2.x one.
    const connection = library === 'nats' ? await connect({ servers, ...options }) : ((await connect3({ servers, ...options } as Parameters<typeof connect3>[0])) as unknown as NatsConnection);
    cleanups.push(() => connection.close());
    return connection;
  };
  const start = async (connections: ConnectionDefinition[]) => {
    const app = await TestApp.start({ health: { connections } });
    cleanups.push(() => app.close());
    return app;
  };
  /** cid of each connection the server holds, by name. */
  const cidsByName = async (server: NatsServer) => Object.fromEntries((await server.connections()).map((c) => [c.name ?? '(unnamed)', c.cid]));

  for (const library of LIBRARIES) it(`a server that stalls for longer than the deadline keeps the app's ${library} connection (no reconnect, the same connection) and the package's own (failed on 957a28d)`, async () => {
    const server = await natsServer();
    const appName = `e2e-stalled-app-${unique()}`;
    // The app's connection with nats.js's defaults: its own PINGs (every 2 min) bear a 2.5 s silence.
    const connection = await appConnection(server.url, { name: appName }, library);
    const status = statusCounts(connection);
    cleanups.push(() => status.stop());
    const app = await start([natsConnection({ name: 'events', connection }), natsConnection({ name: 'own', servers: server.url })]);
    for (const name of ['events', 'own']) await app.waitForState(name, 'up', 5_000);
    const ownConnection = app.registry.get('own').client();
    const before = await cidsByName(server);
    // A server that stalls for 2.5 s (a GC pause, a disk sync, a VM's stolen time), then goes on.
    await server.pause();
    for (const name of ['events', 'own']) await app.waitForState(name, 'down', 5_000);
    await sleep(2_500);
    server.resume();
    for (const name of ['events', 'own']) await app.waitFor(name, (s) => s.state === 'up', RECOVER_MS);
    await sleep(1_000);
    await waitUntil(async () => !(await server.connections()).some((c) => SIDE_PROBE.test(c.name ?? '')), 5_000, 'the side connections are gone');
    assert.deepEqual(
      { reconnects: status.counts.reconnect ?? 0, disconnects: status.counts.disconnect ?? 0, ownKept: app.registry.get('own').client() === ownConnection, connections: await cidsByName(server) },
      { reconnects: 0, disconnects: 0, ownKept: true, connections: before },
      "a stall drops no transport: the app's connection never reconnects, the package keeps its own, the server holds the same connections",
    );
  });

  for (const library of LIBRARIES) it(`a flow that died alone (a NAT forgot it) is still dropped, the app's ${library} connection and the package's alike, and both come back; the side connection that judged the app's is made by ${library} (passes on 957a28d too; 3.x failed on 5d0b88f: judged by nats 2.x)`, async () => {
    const server = await natsServer();
    // Recorded: the side connection that judges the app's flow dials the server the flow is on (this proxy), and its CONNECT says its library's version.
    const appProxy = await proxyTo(server, { record: true });
    const ownProxy = await proxyTo(server);
    const appName = `e2e-forgotten-app-${unique()}`;
    const connection = await appConnection(`nats://${appProxy.host}:${appProxy.port}`, { name: appName, reconnectTimeWait: 200, maxReconnectAttempts: -1 }, library);

    const status = statusCounts(connection);
    cleanups.push(() => status.stop());
    const app = await start([
      natsConnection({ name: 'app', connection }),
      natsConnection({ name: 'own', servers: `nats://${ownProxy.host}:${ownProxy.port}` }),
    ]);
    for (const name of ['app', 'own']) await app.waitForState(name, 'up', 5_000);
    const ownConnection = app.registry.get('own').client() as NatsConnection;
    const before = await cidsByName(server);
    appProxy.forget();
    ownProxy.forget();
    for (const name of ['app', 'own']) await app.waitForState(name, 'down', 5_000);
    // Nothing is lifted: the old flows stay dead, and only new connections get through.
    for (const name of ['app', 'own']) await app.waitFor(name, (s) => s.state === 'up', RECOVER_MS);
    // The server never heard of the loss either: it keeps the forgotten flows (until its own PINGs give up), beside a new one each.
    const held = await server.connections();
    const newCids = (name: string) => held.filter((c) => c.name === name && c.cid !== before[name]).length;
    assert.equal(status.counts.reconnect, 1, "the app's dead transport dropped once, and nats.js reconnected it");
    assert.equal(app.registry.get('app').client(), connection, "the app's connection is the same object");
    assert.notEqual(app.registry.get('own').client(), ownConnection, 'the package made a new connection of its own');
    assert.equal(ownConnection.isClosed(), true, 'and closed the dead one');
    assert.deepEqual({ app: newCids(appName), own: newCids('own') }, { app: 1, own: 1 }, `one new connection each on the server: ${held.map((c) => `${c.cid} ${c.name}`).join(', ')}`);
    const sides = [...appProxy.clientBytes().matchAll(/CONNECT (\{.*?\})\r\n/g)].map(([, json]) => JSON.parse(json as string) as { name?: string; version: string }).filter((c) => SIDE_PROBE.test(c.name ?? ''));
    assert.ok(sides.length > 0, 'a side connection judged the flow');
    assert.deepEqual([...new Set(sides.map((c) => c.version.split('.')[0]))], [library === 'nats' ? '2' : '3'], `the side connections are made by ${library}: ${sides.map((c) => c.version).join(', ')}`);
  });

  it("a flow slower than its messages (a PONG behind a backlog that still trickles in) keeps its transport: the app's connection never reconnects, the package keeps its own, no message lost (failed before bfdd9d4: 250 messages lost, the own connection replaced)", async (t) => {
    const server = await natsServer();
    const appProxy = await proxyTo(server);
    const ownProxy = await proxyTo(server);
    const subject = { app: `busy.app.${unique()}`, own: `busy.own.${unique()}` };
    const received = { app: 0, own: 0 };
    const connection = await appConnection(`nats://${appProxy.host}:${appProxy.port}`, { name: `e2e-busy-app-${unique()}`, reconnectTimeWait: 200, maxReconnectAttempts: -1 });
    const status = statusCounts(connection);
    cleanups.push(() => status.stop());
    connection.subscribe(subject.app, { callback: () => (received.app += 1) });
    const app = await start([
      natsConnection({ name: 'app', connection }),
      natsConnection({ name: 'own', servers: `nats://${ownProxy.host}:${ownProxy.port}`, subscriptions: [{ subject: subject.own, onMessage: () => (received.own += 1) }] }),
    ]);
    for (const name of ['app', 'own']) await app.waitForState(name, 'up', 5_000);
    const ownConnection = app.registry.get('own').client();
    const publisher = await appConnection(server.url);
    const payload = new Uint8Array(200);
    let sent = 0;
    // About 50 kB/s to each subscriber, through flows throttled to 20 kB/s: the backlog, and the PONG's wait behind it, grow.
    const publishing = setInterval(() => {
      for (let i = 0; i < 10; i += 1) {
        publisher.publish(subject.app, payload);
        publisher.publish(subject.own, payload);
        sent += 1;
      }
    }, 40);
    cleanups.push(() => clearInterval(publishing));
    appProxy.throttle(20_000);
    ownProxy.throttle(20_000);
    for (const name of ['app', 'own']) await app.waitForState(name, 'down', 5_000);
    // Several attempts judge the late flows meanwhile.
    await sleep(5_000);
    clearInterval(publishing);
    await publisher.flush();
    appProxy.pass();
    ownProxy.pass();
    for (const name of ['app', 'own']) await app.waitFor(name, (s) => s.state === 'up', RECOVER_MS);
    await waitUntil(async () => received.app === sent && received.own === sent, 10_000, 'every message received').catch(() => undefined);
    t.diagnostic(`sent ${sent} to each; received app ${received.app}, own ${received.own}; statuses ${JSON.stringify(status.counts)}`);
    assert.deepEqual(
      { reconnects: status.counts.reconnect ?? 0, disconnects: status.counts.disconnect ?? 0, ownKept: app.registry.get('own').client() === ownConnection, lost: { app: sent - received.app, own: sent - received.own } },
      { reconnects: 0, disconnects: 0, ownKept: true, lost: { app: 0, own: 0 } },
      'a flow that delivers lives, however far behind: no transport dropped, no message lost',
    );
  });

  it("an app's connection made with nats.js's reconnect off is never reconnect()ed, which would close it for good: a forgotten flow reads down and the connection is left to the app (failed before bfdd9d4)", async () => {
    const server = await natsServer();
    const proxy = await proxyTo(server);
    const connection = await appConnection(`nats://${proxy.host}:${proxy.port}`, { name: `e2e-no-reconnect-${unique()}`, reconnect: false });
    const status = statusCounts(connection);
    cleanups.push(() => status.stop());
    const app = await start([natsConnection({ name: 'app', connection })]);
    await app.waitForState('app', 'up', 5_000);
    proxy.forget();
    await app.waitForState('app', 'down', 5_000);
    // Long enough for several attempts to judge the dead flow (each one's side connection answers).
    await sleep(5_000);
    assert.deepEqual(
      { closed: connection.isClosed(), statuses: status.counts, up: app.registry.get('app').snapshot().state === 'up' },
      { closed: false, statuses: {}, up: false },
      "the package never touches the app's transport when nats.js would not bring it back: it only reads down",
    );
  });

  it("a stalled server keeps the app's connection when the app lists two servers: the side connection dials the stalled one, not the other (failed before bfdd9d4)", async () => {
    const first = await natsServer();
    const second = await natsServer();
    // In order, with a 1 s handshake timeout, so that the first server is the flow's: with nats.js's shuffled
    // servers each judgement had a 1 in 2 chance of dialling the other one.
    const connection = await appConnection(first.url, { servers: [first.url, second.url], noRandomize: true, timeout: 1_000 });
    const status = statusCounts(connection);
    cleanups.push(() => status.stop());
    const app = await start([natsConnection({ name: 'app', connection })]);
    await app.waitForState('app', 'up', 5_000);
    await first.pause();
    cleanups.push(() => first.isRunning() && first.resume());
    await app.waitForState('app', 'down', 5_000);
    // A 6 s stall (a GC pause, a VM's stolen time): each attempt judges the late flow again.
    await sleep(6_000);
    first.resume();
    await app.waitFor('app', (s) => s.state === 'up', RECOVER_MS);
    assert.deepEqual(
      { reconnects: status.counts.reconnect ?? 0, disconnects: status.counts.disconnect ?? 0, server: connection.getServer() },
      { reconnects: 0, disconnects: 0, server: first.url.replace(/^nats:\/\//, '') },
      'a stall drops no transport, whichever servers the app lists',
    );
  });

  it('app.close() while the server is stalled, with a flow being judged, leaves no timer or socket (no in-process proxy to hide one; failed before the side probe destroyed its dials)', async (t) => {
    const server = await natsServer();
    // The app's connection with nats.js's defaults (a 20 s handshake timeout), made before the baseline.
    const connection = await appConnection(server.url, { name: `e2e-closing-app-${unique()}` });
    const baseline = activeHandles();
    const app = await TestApp.start({ health: { shutdown: { timeoutMs: 1_000 }, connections: [natsConnection({ name: 'app', connection }), natsConnection({ name: 'own', servers: server.url })] } });
    let closed = false;
    cleanups.push(() => !closed && app.close());
    for (const name of ['app', 'own']) await app.waitForState(name, 'up', 5_000);
    await server.pause();
    cleanups.push(() => server.isRunning() && server.resume());
    for (const name of ['app', 'own']) await app.waitForState(name, 'down', 5_000);
    // An attempt is under way: the late flows are being judged, a side connection dialled for each.
    await sleep(1_000);
    const closeAt = performance.now();
    await app.close();
    closed = true;
    t.diagnostic(`app.close() took ${Math.round(performance.now() - closeAt)} ms`);
    await sleep(200);
    const leaked = leakedHandles(baseline);
    server.resume();
    assert.deepEqual(leaked, {}, 'no timer or socket left after app.close()');
  });

  it("the package's side connections never outlive their judgement: a blackhole, a slow path and a stall leave none on the server (passes on 957a28d, which made none; failed before the side probe destroyed its dials)", async (t) => {
    const server = await natsServer();
    const proxy = await proxyTo(server);
    const url = `nats://${proxy.host}:${proxy.port}`;
    const connection = await appConnection(url, { name: `e2e-judged-app-${unique()}`, reconnectTimeWait: 200, maxReconnectAttempts: -1, timeout: 3_000 });
    const app = await start([natsConnection({ name: 'app', connection }), natsConnection({ name: 'own', servers: url })]);
    const names = ['app', 'own'];
    const probesSeen = new Set<string>();
    const watching = setInterval(() => {
      void server
        .connections()
        .then((all) => all.forEach((c) => SIDE_PROBE.test(c.name ?? '') && probesSeen.add(c.name!)))
        .catch(() => undefined);
    }, 100);
    cleanups.push(() => clearInterval(watching));
    /** Connections the server may keep: those whose close a blackhole swallowed (the server never heard of it). */
    const swallowed = new Set<number>();
    const extra = async () => (await server.connections()).filter((c) => !swallowed.has(c.cid) && !/^(own|e2e-judged-app-.*)$/.test(c.name ?? ''));
    const settle = async (what: string) => {
      for (const name of names) await app.waitFor(name, (s) => s.state === 'up', RECOVER_MS);
      await sleep(1_000);
      await waitUntil(async () => (await extra()).length === 0, 5_000, `${what}: no side connection left on the server`).catch(async (error: Error) => {
        throw new Error(`${error.message}: ${(await extra()).map((c) => `${c.cid} '${c.name ?? ''}'`).join(', ')}`);
      });
      const held = (await server.connections()).filter((c) => !swallowed.has(c.cid)).map((c) => c.name);
      assert.equal(held.length, 2, `${what}: one connection per usage, not ${held.join(', ')}`);
    };
    for (const name of names) await app.waitForState(name, 'up', 5_000);
    proxy.blackhole();
    for (const name of names) await app.waitForState(name, 'down', 5_000);
    await sleep(4_000);
    proxy.pass();
    for (const name of names) await app.waitFor(name, (s) => s.state === 'up', RECOVER_MS);
    await sleep(1_000);
    // The side connections dialled into the blackhole were closed, but the proxy swallowed their FINs: the server
    // keeps them (nameless: they never sent CONNECT), as it may keep the old flows. None that connected may stay.
    const all = await server.connections();
    const newest = (name: string) => Math.max(...all.filter((o) => o.name === name).map((o) => o.cid));
    for (const c of all) if (!c.name || c.cid !== newest(c.name)) swallowed.add(c.cid);
    t.diagnostic(`after the blackhole the server keeps ${swallowed.size} swallowed connections: ${all.map((c) => `${c.cid} '${c.name ?? ''}'`).join(', ')}`);
    assert.ok(!all.some((c) => SIDE_PROBE.test(c.name ?? '')), 'no side connection that connected stays');
    await settle('after a blackhole');
    proxy.latency(700);
    for (const name of names) await app.waitFor(name, (s) => s.state === 'down', 5_000);
    await sleep(4_000);
    proxy.pass();
    await settle('after a slow path');
    await server.pause();
    for (const name of names) await app.waitFor(name, (s) => s.state === 'down', 5_000);
    await sleep(3_000);
    server.resume();
    await settle('after a stall');
    t.diagnostic(`side connections seen on the server meanwhile: ${probesSeen.size}`);
  });
});

describe('NATS kind: no harm, second review (each failed on 3dbbed8)', { timeout: 180_000 }, () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  // After each test: an app left running would beat on, and its timers would read as another test's leak.
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  });
  const natsServer = async (options: Parameters<typeof NatsServer.start>[0] = {}) => {
    const server = await NatsServer.start(options);
    cleanups.push(() => server.stop());
    return server;
  };

  it("the package's own connection dialled into a stalled server leaves no socket nor timer after app.close() (failed: a socket left per attempt)", async (t) => {
    const server = await natsServer();
    const baseline = activeHandles();
    // The server stalls (SIGSTOP) before the package dials: the kernel accepts, INFO never comes.
    await server.pause();
    cleanups.push(() => server.isRunning() && server.resume());
    const app = await TestApp.start({ health: { shutdown: { timeoutMs: 1_000 }, connections: [natsConnection({ name: 'own', servers: server.url })] } });
    let closed = false;
    cleanups.push(() => !closed && app.close());
    // Two attempts time out (connectTimeoutMs 2 s; nats.js's own handshake timeout is the same), a third is under way.
    await sleep(5_000);
    await app.close();
    closed = true;
    await sleep(2_500);
    const leaked = leakedHandles(baseline);
    const sockets = socketsTo(server.port);
    t.diagnostic(`left after app.close() + 2.5 s: ${JSON.stringify(leaked)}; sockets to the server: ${sockets}`);
    server.resume();
    assert.deepEqual({ leaked, sockets }, { leaked: {}, sockets: 0 }, 'no socket or timer of the package left after app.close()');
  });

  it('no side connection over TLS-first, whose dial cannot be destroyed (tls.connect publishes no net.client.socket): a judgement against a stalled server leaves no socket (failed: 1 socket, for good)', async (t) => {
    const server = await natsServer();
    await server.pause();
    cleanups.push(() => server.isRunning() && server.resume());
    const baseline = activeHandles();
    // The options sideOptions() passes for an app whose connection uses TLS-first (nats-server 2.10+ handshake_first).
    const answered = await serverAnswersAnew('nats', { servers: [`${server.host}:${server.port}`], timeout: 1_500, tls: { handshakeFirst: true } }, AbortSignal.timeout(500));
    // Past nats.js's own handshake timeout (1.5 s) too.
    await sleep(2_500);
    const sockets = socketsTo(server.port);
    t.diagnostic(`answered ${answered}; left 2.5 s after the judgement: ${JSON.stringify(leakedHandles(baseline))}; sockets to the server: ${sockets}`);
    server.resume();
    assert.equal(sockets, 0, 'no socket of the side connection outlives its judgement (as for a plain dial, which the probe destroys)');
  });

  it("a 'tls://' server never gets the password in clear (nats.js 2.x ignores the scheme): refused without TLS, or warned of (failed: logged in in clear, unwarned)", async () => {
    const server = await natsServer({ auth: { users: { alice: 's3cr3t-pw' } } });
    const logger = new RecordingLogger();
    // allowInsecureAuth: false warns for a loopback host too (README), so the check runs here.
    const app = await TestApp.start({
      logger,
      health: {
        connections: [
          natsConnection({ name: 'plain', servers: `nats://alice:s3cr3t-pw@${server.host}:${server.port}`, allowInsecureAuth: false }),
          natsConnection({ name: 'tls', servers: `tls://alice:s3cr3t-pw@${server.host}:${server.port}`, allowInsecureAuth: false }),
        ],
      },
    });
    cleanups.push(() => app.close());
    await app.waitForState('plain', 'up', 5_000);
    // The fix may refuse it instead (tls:// as nats.js's tls option: the server offers none): up or down, whichever comes.
    await app.waitFor('tls', (s) => s.state === 'up' || s.state === 'down', 5_000);
    const warnings = logger.lines.filter((line) => line.level === 'warn' && /in clear/.test(line.message)).map((line) => line.message);
    assert.equal(warnings.length >= 1, true, `control: the nats:// one is warned of (${JSON.stringify(warnings)})`);
    const tlsConnection = app.registry.get('tls').client() as NatsConnection | undefined;
    const loggedIn = (await server.connections()).filter((c) => c.name === 'tls').map((c) => c.authorized_user);
    const inClear = loggedIn.length > 0 && tlsConnection !== undefined && !encrypted(tlsConnection);
    assert.deepEqual(
      { loggedInAs: loggedIn, inClear, warned: warnings.length >= 2 },
      { loggedInAs: loggedIn, inClear, warned: inClear },
      'a tls:// password that goes in clear is warned of like the nats:// one (or the connection is refused without TLS)',
    );
  });

  it("natsOptions.tls: null (nats.js: never TLS) does not silence the cleartext warning (failed: no warning)", async () => {
    const server = await natsServer({ auth: { users: { bob: 'pw-b0b-secret' } } });
    const logger = new RecordingLogger();
    const app = await TestApp.start({
      logger,
      health: { connections: [natsConnection({ name: 'null-tls', servers: `${server.host}:${server.port}`, natsOptions: { user: 'bob', pass: 'pw-b0b-secret', tls: null }, allowInsecureAuth: false })] },
    });
    cleanups.push(() => app.close());
    await app.waitForState('null-tls', 'up', 5_000);
    assert.equal(encrypted(app.registry.get('null-tls').client() as NatsConnection), false, 'the password went in clear');
    const warnings = logger.lines.filter((line) => line.level === 'warn' && /in clear/.test(line.message));
    assert.equal(warnings.length, 1, 'the password sent in clear is warned of at bootstrap');
  });

  it("a flow judgement leaves Node 20's promise hooks off once it is done: the app's promises pay nothing after (failed: on for good, 300 000 awaits 3 to 3.5 times slower)", async (t) => {
    const probe = fileURLToPath(new URL('../lib/adapters/nats/nats-side-probe.js', import.meta.url));
    // A fresh process: no other AsyncLocalStorage (Nest's, the kit's) has turned the hooks on before.
    const script = `
      import net from 'node:net';
      import { executionAsyncId } from 'node:async_hooks';
      const { serverAnswersAnew } = await import(${JSON.stringify(probe)});
      const id = () => Promise.resolve().then(() => executionAsyncId());
      const work = async () => { const at = performance.now(); for (let i = 0; i < 300000; i++) await Promise.resolve(i); return performance.now() - at; };
      const before = { id: await id(), ms: await work() };
      const refusing = net.createServer((s) => s.destroy());
      await new Promise((r) => refusing.listen(0, '127.0.0.1', r));
      await serverAnswersAnew('nats', { servers: ['127.0.0.1:' + refusing.address().port], timeout: 1000 }, AbortSignal.timeout(500));
      refusing.close();
      await new Promise((r) => setTimeout(r, 100));
      const afterwards = { id: await id(), ms: await work() };
      console.log(JSON.stringify({ before, afterwards }));
    `;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 }, (error, stdout) => (error ? reject(error) : resolve(stdout))),
    );
    const { before, afterwards } = JSON.parse(out) as Record<'before' | 'afterwards', { id: number; ms: number }>;
    t.diagnostic(`300 000 awaits: ${Math.round(before.ms)} ms before any judgement, ${Math.round(afterwards.ms)} ms after one`);
    assert.deepEqual(
      { promiseHooksBefore: before.id !== 0, promiseHooksAfter: afterwards.id !== 0 },
      { promiseHooksBefore: false, promiseHooksAfter: false },
      'a judgement leaves the async hooks as it found them (executionAsyncId() in a promise continuation stays 0)',
    );
  });
  for (const usage of ['own', 'app'] as const)
  it(`at shutdown the package's queue-group member drains, on ${usage === 'own' ? 'its own connection' : "the app's connection"}: the messages the server already routed to it are handled, none dropped (failed: about 500 of 200 000 lost)`, async (t) => {
    const server = await natsServer();
    const subject = `jobs.${process.pid}`;
    // The other member of the queue group: it keeps working through the package's shutdown (a rolling deploy).
    const other = await connect({ servers: server.url, name: 'other-worker' });
    cleanups.push(() => other.close());
    let otherGot = 0;
    other.subscribe(subject, { queue: 'workers', callback: () => void otherGot++ });
    let packageGot = 0;
    const subscriptions = [{ subject, queue: 'workers', onMessage: () => void packageGot++ }];
    const appWorker = usage === 'app' ? await connect({ servers: server.url, name: 'app-worker' }) : undefined;
    if (appWorker) cleanups.push(() => appWorker.close());
    const where = appWorker ? { connection: appWorker } : { servers: server.url };
    const app = await TestApp.start({ health: { connections: [natsConnection({ name: 'workers', ...where, subscriptions })] } });
    let closed = false;
    cleanups.push(() => !closed && app.close());
    await app.waitForState('workers', 'up', 5_000);
    await other.flush();
    const publisher = await connect({ servers: server.url, name: 'publisher' });
    cleanups.push(() => publisher.close());
    const total = 200_000;
    let closing: Promise<void> | undefined;
    for (let i = 0; i < total; i++) {
      publisher.publish(subject);
      if (i % 1_000 === 999) await publisher.flush();
      // Shut the app down in the middle of the stream.
      if (!closing && packageGot >= 5_000) closing = app.close().then(() => void (closed = true));
    }
    await publisher.flush();
    await closing;
    await other.flush();
    await sleep(500);
    t.diagnostic(`published ${total}; handled by the package ${packageGot}, by the other member ${otherGot}; lost ${total - packageGot - otherGot}`);
    assert.ok(closing !== undefined, 'the app was closed during the stream');
    assert.equal(packageGot + otherGot, total, 'every message routed to a member was handled by it: none dropped by the shutdown');
  });
});

describe('NATS kind: no harm, third review (each failed on f378179)', { timeout: 300_000 }, () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  // After each test: an app left running would beat on, and its timers would read as another test's leak.
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
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
