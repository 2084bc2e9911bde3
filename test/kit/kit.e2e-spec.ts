import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';
import pg from 'pg';
import { ChaosProxy } from './chaos.proxy.js';
import { NetworkNamespace } from './network-namespace.js';
import { PostgresServer } from './postgres.server.js';
import { childrenOf, isAlive, run, waitUntilDead } from './process.util.js';
import { POSTGRES_ENV, postgresFromEnv, sharedPostgres, startSharedServers } from './shared-servers.js';

const TIMED_OUT = Symbol('timed out');

/** The promise's value, or TIMED_OUT; a rejection within the time fails the test. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(resolve, ms, TIMED_OUT)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A connected pg client and a promise that settles with how it lost its connection. */
async function connectedClient(url: string): Promise<{ client: pg.Client; lost: Promise<string> }> {
  const client = new pg.Client({ connectionString: url });
  const lost = new Promise<string>((resolve) => {
    client.on('error', (error: Error & { code?: string }) => resolve(`error ${error.code ?? ''} ${error.message}`));
    client.on('end', () => resolve('end'));
  });
  await client.connect();
  return { client, lost };
}

/** A query whose eventual failure is expected and must not surface as an unhandled rejection. */
function pendingQuery(client: pg.Client, sql: string): Promise<pg.QueryResult> {
  const query = client.query(sql);
  query.catch(() => undefined);
  return query;
}

/** Waits for a condition that settles asynchronously; fails the test after timeoutMs. */
async function until(condition: () => boolean, timeoutMs = 1_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `condition still false after ${timeoutMs} ms: ${condition}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function ms(since: number): number {
  return Math.round(performance.now() - since);
}

const nodeScript = (script: string, env: NodeJS.ProcessEnv) =>
  promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env, timeout: 60_000 });

describe('PostgresServer', () => {
  let server: PostgresServer;
  let startMs = 0;

  before(async () => {
    const started = performance.now();
    server = await PostgresServer.start();
    startMs = ms(started);
  });
  after(() => server?.stop());

  it('starts a fresh cluster that answers a real query', async (t) => {
    t.diagnostic(`initdb + start + first query: ${startMs} ms`);
    assert.equal(server.url, `postgres://postgres@127.0.0.1:${server.port}/postgres`);
    assert.ok(isAlive(server.pid));
    assert.deepEqual(await server.query('SELECT 1 AS one'), [{ one: 1 }]);
  });

  it('kill() drops a connected client and leaves nothing running', async () => {
    const { client, lost } = await connectedClient(server.url);
    const pids = [server.pid, ...childrenOf(server.pid)];
    await server.kill();
    assert.notEqual(await within(lost, 5_000), TIMED_OUT);
    assert.equal(server.isRunning(), false);
    assert.equal(pids.filter(isAlive).length, 0);
    await assert.rejects(server.query('SELECT 1'), { code: 'ECONNREFUSED' });
    await client.end().catch(() => undefined);
  });

  it('startAgain() answers again on the same port after kill()', async (t) => {
    const started = performance.now();
    await server.startAgain();
    t.diagnostic(`startAgain after kill (crash recovery): ${ms(started)} ms`);
    assert.deepEqual(await server.query('SELECT 2 AS two'), [{ two: 2 }]);
  });

  it('terminateBackends() ends every other session', async () => {
    const { client, lost } = await connectedClient(server.url);
    assert.equal(await server.terminateBackends(), 1);
    assert.match(String(await within(lost, 5_000)), /administrator command/);
    await client.end().catch(() => undefined);
  });

  it('restart() drops clients cleanly and comes back with a new postmaster', async (t) => {
    const { client, lost } = await connectedClient(server.url);
    const before = server.pid;
    const started = performance.now();
    await server.restart();
    t.diagnostic(`restart (fast stop + start): ${ms(started)} ms`);
    assert.notEqual(await within(lost, 5_000), TIMED_OUT);
    assert.notEqual(server.pid, before);
    assert.deepEqual(await server.query('SELECT 3 AS three'), [{ three: 3 }]);
    await client.end().catch(() => undefined);
  });

  it('attach() kills and starts again a server it did not start, and cannot stop it', async () => {
    const attached = PostgresServer.attach(server.location);
    await attached.kill();
    assert.equal(server.isRunning(), false);
    await attached.startAgain();
    await attached.stop();
    assert.deepEqual(await server.query('SELECT 4 AS four'), [{ four: 4 }]);
  });

  it('stop() removes processes and folder, and is idempotent', async () => {
    const pids = [server.pid, ...childrenOf(server.pid)];
    await server.stop();
    await server.stop();
    await waitUntilDead(pids, 2_000);
    assert.equal(existsSync(server.dir), false);
  });
});

describe('shared servers', () => {
  const kit = new URL('./shared-servers.js', import.meta.url).href;
  const baseEnv = { ...process.env };
  for (const name of [...Object.values(POSTGRES_ENV), 'NODE_TEST_CONTEXT']) delete baseEnv[name];

  it('startSharedServers() gives env through which another process kills and restarts the server', async (t) => {
    const started = performance.now();
    const shared = await startSharedServers();
    t.diagnostic(`startSharedServers: ${ms(started)} ms; env ${JSON.stringify(shared.env)}`);
    try {
      const env = { ...baseEnv, ...shared.env };
      const here = postgresFromEnv(env)!;
      const { client, lost } = await connectedClient(here.url);
      const { stdout } = await nodeScript(
        `import { sharedPostgres } from ${JSON.stringify(kit)};
         const server = await sharedPostgres();
         const before = server.pid;
         await server.kill();
         const killed = !server.isRunning();
         await server.startAgain();
         console.log(JSON.stringify({ before, killed, after: server.pid }));`,
        env,
      );
      const child = JSON.parse(stdout) as { before: number; killed: boolean; after: number };
      assert.equal(child.killed, true);
      assert.notEqual(await within(lost, 5_000), TIMED_OUT);
      assert.equal(here.pid, child.after);
      assert.deepEqual(await here.query('SELECT 1 AS one'), [{ one: 1 }]);
      await client.end().catch(() => undefined);

      // A file that leaves the server dead does not break the next one: sharedPostgres() starts it again.
      await here.kill();
      await nodeScript(`import { sharedPostgres } from ${JSON.stringify(kit)}; await sharedPostgres();`, env);
      assert.equal(here.isRunning(), true);
    } finally {
      await shared.stop();
    }
    assert.equal(existsSync(shared.env[POSTGRES_ENV.dir]!), false);
  });

  it('sharedPostgres() without env starts a private server that is removed at process exit', async () => {
    const { stdout } = await nodeScript(
      `import { sharedPostgres } from ${JSON.stringify(kit)};
       const server = await sharedPostgres();
       const same = server === (await sharedPostgres());
       const [{ one }] = await server.query('SELECT 1 AS one');
       console.log(JSON.stringify({ dir: server.dir, pid: server.pid, same, one }));`,
      baseEnv,
    );
    const child = JSON.parse(stdout) as { dir: string; pid: number; same: boolean; one: number };
    assert.deepEqual({ same: child.same, one: child.one }, { same: true, one: 1 });
    await waitUntilDead([child.pid], 2_000);
    assert.equal(existsSync(child.dir), false);
  });

  it('a private server is also removed when its process is killed by SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { sharedPostgres } from ${JSON.stringify(kit)};
         const server = await sharedPostgres();
         console.log(JSON.stringify({ dir: server.dir, pid: server.pid }));
         setInterval(() => undefined, 1_000);`,
      ],
      { env: baseEnv, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const started = JSON.parse(line.toString()) as { dir: string; pid: number };
    child.kill('SIGTERM');
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    assert.deepEqual({ code, signal }, { code: null, signal: 'SIGTERM' });
    await waitUntilDead([started.pid], 2_000);
    assert.equal(existsSync(started.dir), false);
  });
});

describe('ChaosProxy', () => {
  let echo: net.Server;
  const echoSockets = new Set<net.Socket>();
  let echoEnded = 0;
  let proxy: ChaosProxy;
  let postgres: PostgresServer;
  const sockets: net.Socket[] = [];

  async function dial(): Promise<net.Socket> {
    const socket = net.connect(proxy.port, proxy.host).setNoDelay(true);
    socket.on('error', () => undefined);
    sockets.push(socket);
    await once(socket, 'connect');
    return socket;
  }

  function read(socket: net.Socket, length: number): Promise<string> {
    return new Promise((resolve) => {
      let received = '';
      const onData = (chunk: Buffer) => {
        received += chunk.toString();
        if (received.length < length) return;
        socket.off('data', onData);
        resolve(received);
      };
      socket.on('data', onData);
    });
  }

  before(async () => {
    echo = net.createServer((socket) => {
      echoSockets.add(socket);
      socket.on('error', () => undefined).on('end', () => echoEnded++);
      socket.on('close', () => echoSockets.delete(socket));
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    proxy = await ChaosProxy.start('127.0.0.1', (echo.address() as net.AddressInfo).port);
    postgres = await sharedPostgres();
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await proxy?.close();
    for (const socket of echoSockets) socket.destroy();
    if (echo?.listening) await new Promise((resolve) => echo.close(resolve));
  });

  it('pass() forwards both ways', async () => {
    const socket = await dial();
    socket.write('hello');
    assert.equal(await read(socket, 5), 'hello');
    assert.equal(proxy.connectionCount, 1);
  });

  it('latency(ms) delays each direction and keeps order when the latency changes', async (t) => {
    const socket = await dial();
    proxy.latency(100);
    const started = performance.now();
    socket.write('ping');
    assert.equal(await read(socket, 4), 'ping');
    const elapsed = ms(started);
    t.diagnostic(`round trip at latency(100): ${elapsed} ms`);
    // 100 ms each way; Date.now() granularity allows a millisecond less per direction.
    assert.ok(elapsed >= 198, `round trip took ${elapsed} ms`);

    const reply = read(socket, 2);
    socket.write('a');
    await new Promise((resolve) => setTimeout(resolve, 20));
    proxy.pass();
    socket.write('b');
    assert.equal(await reply, 'ab');
  });

  it('pass() after latency() delivers at once, in order, what was still in flight (as a new connection would get it)', async (t) => {
    const socket = await dial();
    proxy.latency(1_000);
    const reply = read(socket, 2);
    socket.write('a');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const passed = performance.now();
    proxy.pass();
    socket.write('b');
    assert.equal(await reply, 'ab');
    t.diagnostic(`in flight, delivered ${ms(passed)} ms after pass()`);
    // Held back by its old delay, 'a' would come back about 980 ms after pass().
    assert.ok(ms(passed) < 500, `what was in flight came ${ms(passed)} ms after pass()`);
  });

  it('throttle(bytesPerSecond) slows the current connections only, until pass()', async (t) => {
    const current = await dial();
    proxy.throttle(1_000);
    const fresh = await dial();
    const started = performance.now();
    const message = 'x'.repeat(300);
    const replies = [read(current, 300).then(() => ms(started)), read(fresh, 300).then(() => ms(started))];
    current.write(message);
    fresh.write(message);
    const [currentMs, freshMs] = await Promise.all(replies);
    t.diagnostic(`300 bytes there and back under throttle(1000): current ${currentMs} ms, new ${freshMs} ms`);
    // 300 ms each way; Date.now() granularity allows a millisecond less per direction.
    assert.ok(currentMs >= 598, `the current connection's round trip took ${currentMs} ms`);
    assert.ok(freshMs < 300, `the new connection's round trip took ${freshMs} ms`);
    proxy.pass();
    const again = performance.now();
    const reply = read(current, 300);
    current.write(message);
    await reply;
    assert.ok(ms(again) < 300, `after pass() the current connection's round trip took ${ms(again)} ms`);
  });

  it('stall() holds bytes back until pass()', async () => {
    const socket = await dial();
    proxy.stall();
    const reply = read(socket, 5);
    socket.write('queue');
    assert.equal(await within(reply, 300), TIMED_OUT);
    proxy.pass();
    assert.equal(await within(reply, 1_000), 'queue');
  });

  it('blackhole() silences a PostgreSQL query; after pass() a new connection works', async () => {
    const toPostgres = await ChaosProxy.start(postgres.host, postgres.port);
    try {
      const url = `postgres://postgres@${toPostgres.host}:${toPostgres.port}/postgres`;
      const { client, lost } = await connectedClient(url);
      toPostgres.blackhole();
      assert.equal(await within(pendingQuery(client, 'SELECT 1'), 1_000), TIMED_OUT);
      assert.equal(await within(lost, 0), TIMED_OUT);
      // New connections are accepted, then hear nothing.
      assert.equal(await within(connectedClient(url).then((c) => c.client.end()), 500), TIMED_OUT);
      toPostgres.pass();
      const fresh = await connectedClient(url);
      assert.deepEqual((await fresh.client.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
      await fresh.client.end();
      client.end().catch(() => undefined);
    } finally {
      await toPostgres.close();
    }
    assert.equal(toPostgres.connectionCount, 0);
  });

  it('fin() closes current connections gracefully on both sides', async () => {
    const socket = await dial();
    socket.write('x');
    await read(socket, 1);
    const [current, endedBefore] = [proxy.connectionCount, echoEnded];
    proxy.fin();
    assert.notEqual(await within(once(socket, 'end'), 1_000), TIMED_OUT);
    assert.notEqual(await within(once(socket, 'close'), 1_000), TIMED_OUT);
    await until(() => echoEnded === endedBefore + current && proxy.connectionCount === 0);
  });

  it('reset() aborts current connections with an RST', async () => {
    const socket = await dial();
    socket.write('x');
    await read(socket, 1);
    const failed = once(socket, 'error');
    proxy.reset();
    const [error] = (await within(failed, 1_000)) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNRESET');
  });

  it('reset() while a FIN is on its way (an error on one side as the other closes) still closes the connection', async () => {
    const socket = await dial();
    socket.write('x');
    await read(socket, 1);
    // fin() calls end() on both sides; an RST then would be refused (EINVAL) and leave the proxy's socket open
    // for good, keeping the process from ever exiting.
    proxy.fin();
    proxy.reset();
    assert.notEqual(await within(once(socket, 'close'), 1_000), TIMED_OUT);
    await until(() => proxy.connectionCount === 0);
  });

  it('refuse() resets new connections while current ones carry on', async () => {
    const current = await dial();
    proxy.refuse();
    const refused = net.connect(proxy.port, proxy.host);
    const [error] = (await within(once(refused, 'error'), 1_000)) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNRESET');
    current.write('still');
    assert.equal(await read(current, 5), 'still');
    proxy.pass();
    const fresh = await dial();
    fresh.write('ok');
    assert.equal(await read(fresh, 2), 'ok');
  });

  it('close() leaves no socket, server or timer behind', async () => {
    const socket = await dial();
    proxy.latency(1_000);
    socket.write('in flight');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await proxy.close();
    for (const s of sockets) s.destroy();
    for (const s of echoSockets) s.destroy();
    await new Promise((resolve) => echo.close(resolve));
    // Handles are released on a later loop turn than destroy() and close() report.
    await until(() => !process.getActiveResourcesInfo().some((name) => /TCP|Timeout/.test(name)));
  });
});

const nsUnsupported = await NetworkNamespace.unsupportedReason();
if (nsUnsupported) console.log(`NetworkNamespace tests skipped: ${nsUnsupported}`);

describe('NetworkNamespace', { skip: nsUnsupported }, () => {
  let ns: NetworkNamespace;
  let server: PostgresServer;
  const timings: string[] = [];

  before(async () => {
    let started = performance.now();
    ns = await NetworkNamespace.create();
    timings.push(`namespace + veth: ${ms(started)} ms`);
    started = performance.now();
    server = await PostgresServer.start({ netns: ns });
    timings.push(`PostgreSQL inside: ${ms(started)} ms`);
  });
  after(async () => {
    await server?.stop();
    await ns?.destroy();
  });

  it('serves PostgreSQL inside the namespace to the host over the veth', async (t) => {
    t.diagnostic(timings.join('; '));
    assert.equal(server.host, ns.nsAddress);
    assert.match(await run('ip', ['route', 'get', ns.nsAddress]), /dev vch-\d+ /);
    const [row] = await server.query<{ client: string }>('SELECT host(inet_client_addr()) AS client');
    assert.equal(row?.client, ns.hostAddress);
  });

  it('blackhole(port) makes a query hang without error; heal() lets it finish and new ones connect', async (t) => {
    const { client, lost } = await connectedClient(server.url);
    await ns.blackhole(server.port);
    assert.match(await ns.exec('iptables', ['-S']), /--sport \d+ -j DROP/);
    const query = pendingQuery(client, 'SELECT 1 AS one');
    assert.equal(await within(query, 2_000), TIMED_OUT);
    assert.equal(await within(lost, 0), TIMED_OUT);

    await ns.heal();
    assert.deepEqual(await server.query('SELECT 2 AS two'), [{ two: 2 }]);
    // Nothing was lost, only delayed: TCP retransmits once the path is back.
    const started = performance.now();
    const result = await within(query, 15_000);
    t.diagnostic(`blackholed query answered ${ms(started)} ms after heal (TCP retransmission)`);
    assert.notEqual(result, TIMED_OUT);
    await client.end();
  });

  it('reset(port) makes the next send fail with ECONNRESET', async () => {
    const { client, lost } = await connectedClient(server.url);
    await ns.reset(server.port);
    await assert.rejects(within(client.query('SELECT 1'), 2_000), { code: 'ECONNRESET' });
    assert.match(await lost, /ECONNRESET/);
    await ns.heal();
    assert.deepEqual(await server.query('SELECT 3 AS three'), [{ three: 3 }]);
  });

  it('destroy() removes the namespace, its veth and everything inside; idempotent', async () => {
    const postmaster = server.pid;
    const hostLink = (await run('ip', ['route', 'get', ns.nsAddress])).match(/dev (vch-\d+) /)?.[1];
    await server.stop();
    await ns.destroy();
    await ns.destroy();
    assert.equal(isAlive(postmaster), false);
    assert.doesNotMatch(await run('ip', ['netns', 'list']), new RegExp(`^${ns.name}\\b`, 'm'));
    await assert.rejects(run('ip', ['link', 'show', hostLink!]));
  });
});
