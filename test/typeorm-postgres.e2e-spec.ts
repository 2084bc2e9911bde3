import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { NetworkNamespace } from './kit/network-namespace.js';
import { PostgresServer } from './kit/postgres.server.js';
import { sharedPostgres } from './kit/shared-servers.js';
import { activeHandles, leakedHandles, TestApp } from './kit/test-app.js';

// Detection bound under test: intervalMs + timeoutMs. Assertions allow a generous margin for a busy CI
// machine; the benchmark measures the real figures.
const INTERVAL_MS = 1_000;
const TIMEOUT_MS = 500;
const BOUND_MS = INTERVAL_MS + TIMEOUT_MS;
const MARGIN_MS = 1_000;
const options = {
  heartbeat: { intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, connectTimeoutMs: 1_000 },
  reconnect: { initialDelayMs: 200, maxDelayMs: 1_000, maxAttempts: Infinity },
};
const now = () => performance.timeOrigin + performance.now();

function postgresDataSource(host: string, port: number): DataSource {
  return new DataSource({ type: 'postgres', host, port, username: 'postgres', database: 'postgres' });
}

async function startApp(dataSource: DataSource): Promise<TestApp> {
  const app = await TestApp.start({ health: { connections: [{ name: 'pg', kind: 'typeorm', dataSource, ...options }] } });
  await app.waitFor('pg', (s) => s.lastBeatAt !== undefined, 10_000);
  return app;
}

/** Waits for the fault to be noticed and checks the bound; reports the figure in the test output. */
async function expectDetected(t: TestContext, app: TestApp, faultAt: number, fault: string): Promise<void> {
  const { elapsedMs, snapshot } = await app.waitForState('pg', 'down', BOUND_MS + MARGIN_MS + 5_000, faultAt);
  t.diagnostic(`${fault}: down after ${elapsedMs} ms (bound ${BOUND_MS} ms): ${snapshot.reason}`);
  assert.ok(elapsedMs <= BOUND_MS + MARGIN_MS, `${fault} noticed after ${elapsedMs} ms, bound ${BOUND_MS} ms`);
  assert.equal((await app.health()).status, 503);
}

async function expectRecovered(t: TestContext, app: TestApp, dataSource: DataSource, clearedAt: number, fault: string): Promise<void> {
  const { elapsedMs } = await app.waitForState('pg', 'up', 15_000, clearedAt);
  t.diagnostic(`${fault}: up again ${elapsedMs} ms after the fault cleared`);
  assert.equal((await app.health()).status, 200);
  assert.deepEqual(await dataSource.query('SELECT 40 + 2 AS answer'), [{ answer: 42 }]);
}

describe('TypeORM over real PostgreSQL', () => {
  let server: PostgresServer;
  before(async () => (server = await sharedPostgres()));

  it('kill -9 of the server: 503 within the bound, 200 again after a restart, without restarting the app', async (t) => {
    const baseline = activeHandles();
    const dataSource = postgresDataSource(server.host, server.port);
    const app = await startApp(dataSource);
    try {
      const killedAt = now();
      await server.kill();
      await expectDetected(t, app, killedAt, 'kill');
      await sleep(2_000); // a few failed reconnect attempts while the server is away
      assert.ok(app.snapshot('pg').reconnectAttempts >= 1);
      const restartedAt = now();
      await server.startAgain();
      await expectRecovered(t, app, dataSource, restartedAt, 'kill');
    } finally {
      if (!server.isRunning()) await server.startAgain();
      await app.close();
    }
    assert.equal(dataSource.isInitialized, false, 'the package opened it, so it closed it');
    await sleep(100);
    assert.deepEqual(leakedHandles(baseline), {}, 'no timer or socket left after app.close()');
  });

  it('pg_terminate_backend: the lost session is noticed and replaced', async (t) => {
    const dataSource = postgresDataSource(server.host, server.port);
    const app = await startApp(dataSource);
    try {
      const terminatedAt = now();
      // Watched from before the fault: the probe's loss is reported at once and replaced within milliseconds,
      // so 'down' may come and go before terminateBackends() returns.
      const detected = app.waitForState('pg', 'down', BOUND_MS + MARGIN_MS + 5_000, terminatedAt);
      const count = await server.terminateBackends();
      assert.ok(count >= 1, 'the pool held a backend');
      const { elapsedMs, snapshot } = await detected;
      t.diagnostic(`pg_terminate_backend: down after ${elapsedMs} ms (bound ${BOUND_MS} ms): ${snapshot.reason}`);
      assert.ok(elapsedMs <= BOUND_MS + MARGIN_MS);
      await expectRecovered(t, app, dataSource, terminatedAt, 'pg_terminate_backend');
    } finally {
      await app.close();
    }
  });

  const proxyFaults: Array<{ fault: string; title: string; inject: (proxy: ChaosProxy) => void }> = [
    { fault: 'proxy blackhole', title: 'a silent blackhole (every byte swallowed)', inject: (proxy) => proxy.blackhole() },
    { fault: 'latency 1000 ms', title: 'a slow server (latency above the deadline)', inject: (proxy) => proxy.latency(TIMEOUT_MS * 2) },
    { fault: 'RST', title: 'a connection reset (RST)', inject: (proxy) => proxy.reset() },
  ];
  for (const { fault, title, inject } of proxyFaults) {
    it(`${title} through the chaos proxy: down within the bound, up once it passes traffic again`, async (t) => {
      const proxy = await ChaosProxy.start(server.host, server.port);
      t.after(() => proxy.close());
      const dataSource = postgresDataSource(proxy.host, proxy.port);
      const app = await startApp(dataSource);
      try {
        const faultAt = now();
        inject(proxy);
        await expectDetected(t, app, faultAt, fault);
        const healedAt = now();
        proxy.pass();
        await expectRecovered(t, app, dataSource, healedAt, fault);
      } finally {
        await app.close();
      }
    });
  }
});

describe('TypeORM over PostgreSQL in a network namespace (kernel-level faults)', async () => {
  const reason = await NetworkNamespace.unsupportedReason();
  let namespace: NetworkNamespace;
  let server: PostgresServer;
  before(async () => {
    if (reason) return;
    namespace = await NetworkNamespace.create();
    server = await PostgresServer.start({ netns: namespace });
  });
  after(async () => {
    await server?.stop();
    await namespace?.destroy();
  });

  // Skipped only where the kernel or the user forbids namespaces; CI runs as root and runs it.
  it('iptables DROP both ways (no FIN, no RST): down within the bound, up after the rules go', { skip: reason }, async (t) => {
    const dataSource = postgresDataSource(server.host, server.port);
    const app = await startApp(dataSource);
    try {
      const faultAt = now();
      await namespace.blackhole(server.port);
      await expectDetected(t, app, faultAt, 'iptables DROP');
      await sleep(1_500); // reconnects run into the silence too
      const healedAt = now();
      await namespace.heal();
      await expectRecovered(t, app, dataSource, healedAt, 'iptables DROP');
    } finally {
      await app.close();
    }
  });
});
