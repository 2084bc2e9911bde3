/**
 * "Do no harm" for TypeORM: the package never destroys, initializes or re-configures a DataSource it does
 * not own, runs the schema steps of one it owns once, tells a saturated pool from a dead server, and
 * leaves nothing of its own behind at shutdown. Against real PostgreSQL 15 and sql.js.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { DataSource, EntitySchema, type DataSourceOptions, type MigrationInterface, type QueryRunner } from 'typeorm';
import type { ConnectionSnapshot } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { NetworkNamespace } from './kit/network-namespace.js';
import { PostgresServer } from './kit/postgres.server.js';
import { sharedPostgres } from './kit/shared-servers.js';
import { activeHandles, leakedHandles, TestApp } from './kit/test-app.js';

const INTERVAL_MS = 1_000;
const TIMEOUT_MS = 500;
const BOUND_MS = INTERVAL_MS + TIMEOUT_MS;
/** A busy 2-core machine shared with other test runs; the benchmark measures the real figures. */
const MARGIN_MS = 1_000;
const monitorOptions = {
  heartbeat: { intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, connectTimeoutMs: 1_000 },
  reconnect: { initialDelayMs: 200, maxDelayMs: 1_000, maxAttempts: Infinity },
};
/** What the README recommends for the pool of a data source the app owns (see "TypeORM" there). */
const RECOMMENDED_PG_POOL = { keepAlive: true, keepAliveInitialDelayMillis: 10_000, idleTimeoutMillis: 10_000, maxLifetimeSeconds: 300 };
const APP_NAME = 'no-harm-app';
const now = () => performance.timeOrigin + performance.now();

interface Order {
  id: number;
  item: string;
}
const orders = new EntitySchema<Order>({
  name: 'Order',
  tableName: 'no_harm_orders',
  columns: { id: { type: Number, primary: true, generated: true }, item: { type: String } },
});

/** The app's own data source, as TypeOrmModule would build it: with an entity and `synchronize`. */
function appPostgres(host: string, port: number, extra: Partial<DataSourceOptions> = {}): DataSource {
  return new DataSource({
    type: 'postgres',
    host,
    port,
    username: 'postgres',
    database: 'postgres',
    applicationName: APP_NAME,
    entities: [orders],
    synchronize: true,
    ...extra,
  } as DataSourceOptions);
}

interface PgPool {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
  ending: boolean;
}
const poolOf = (dataSource: DataSource) => (dataSource.driver as unknown as { master: PgPool }).master;

async function startApp(dataSource: DataSource, extra: { metrics?: { registry: Registry } } = {}): Promise<TestApp> {
  const app = await TestApp.start({
    health: { ...extra, connections: [{ name: 'db', kind: 'typeorm', dataSource, ...monitorOptions }] },
  });
  await app.waitFor('db', (s) => s.lastBeatAt !== undefined, 10_000);
  return app;
}

/** Every snapshot the connection passes through, from now on. */
function record(app: TestApp): ConnectionSnapshot[] {
  const seen: ConnectionSnapshot[] = [];
  app.registry.get('db').events$.subscribe((event) => seen.push(event.snapshot));
  return seen;
}

/** Rejects when `promise` takes longer than `ms`, so a hung query fails the test instead of stalling it. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function probeBackends(server: PostgresServer): Promise<number> {
  const rows = await server.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'connection-health%'");
  return rows[0]?.n ?? 0;
}

async function appBackends(server: PostgresServer): Promise<number> {
  const rows = await server.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [APP_NAME]);
  return rows[0]?.n ?? 0;
}

describe('TypeORM: a data source the app owns is never torn down (real PostgreSQL)', () => {
  let server: PostgresServer;
  before(async () => (server = await sharedPostgres()));
  after(() => server.query('DROP TABLE IF EXISTS no_harm_orders'));

  it('kill -9 and restart of the server: down then up, every row still there, the app queries on without a restart', async (t) => {
    const dataSource = appPostgres(server.host, server.port);
    await dataSource.initialize();
    const repository = dataSource.getRepository(orders);
    await repository.clear();
    await repository.save([{ item: 'apples' }, { item: 'pears' }, { item: 'plums' }]);
    const pool = poolOf(dataSource);
    const app = await startApp(dataSource);
    const seen = record(app);
    try {
      const killedAt = now();
      await server.kill();
      const down = await app.waitForState('db', 'down', BOUND_MS + MARGIN_MS + 5_000, killedAt);
      t.diagnostic(`kill -9: down after ${down.elapsedMs} ms: ${down.snapshot.reason}`);
      await sleep(1_500); // reconnect attempts meet a refused port
      await server.startAgain();
      const restartedAt = now();
      // The app's own query, at once: its pool opens a fresh connection, nobody had to re-initialize anything.
      const items = await within(repository.find({ order: { id: 'ASC' } }), 5_000, 'the first app query after the restart');
      t.diagnostic(`first app query after the restart answered in ${Math.round(now() - restartedAt)} ms`);
      assert.deepEqual(items.map((order) => order.item), ['apples', 'pears', 'plums']);
      const up = await app.waitForState('db', 'up', 15_000, restartedAt);
      t.diagnostic(`kill -9: up again ${up.elapsedMs} ms after the restart`);
      assert.ok(seen.some((s) => s.state === 'down') && app.snapshot('db').state === 'up', 'down, then up');
      assert.equal(dataSource.isInitialized, true);
      assert.equal(poolOf(dataSource), pool, "the app's pool is the same object: never destroyed and built again");
      await repository.save({ item: 'quinces' });
      assert.equal(await repository.count(), 4);
    } finally {
      if (!server.isRunning()) await server.startAgain();
      await app.close();
      await release(dataSource);
    }
  });

  it('a pool saturated by pg_sleep for three times timeoutMs reads degraded with its figures, never down, and no app query fails', async (t) => {
    const registry = new Registry();
    const dataSource = appPostgres(server.host, server.port, { poolSize: 4 });
    await dataSource.initialize();
    const app = await startApp(dataSource, { metrics: { registry } });
    const seen = record(app);
    try {
      const outcomes = Array.from({ length: 8 }, () =>
        dataSource.query(`SELECT pg_sleep(${(3 * TIMEOUT_MS) / 1_000})`).then(() => 'answered', (error: Error) => error.message),
      );
      const degraded = await app.waitFor('db', (s) => s.state === 'degraded', 2 * INTERVAL_MS + MARGIN_MS);
      const health = await app.health();
      const metric = (await registry.getSingleMetric('connection_health_figure')?.get())?.values.find(
        (value) => value.labels.connection === 'db' && value.labels.figure === 'poolWaiting',
      );
      t.diagnostic(`degraded: ${degraded.reason}; figures ${JSON.stringify(degraded.figures)}`);
      assert.ok((degraded.figures?.poolWaiting ?? 0) >= 1, 'waiting clients in the snapshot');
      assert.equal(degraded.figures?.poolMax, 4);
      assert.equal(health.status, 200, 'degraded still serves');
      assert.ok(((health.body.details.db?.figures as Record<string, number> | undefined)?.poolWaiting ?? 0) >= 1, 'and in the health details');
      assert.ok((metric?.value ?? 0) >= 1, 'and as a metric');

      assert.deepEqual(await Promise.all(outcomes), Array(8).fill('answered'), 'no app query failed');
      await app.waitFor('db', (s) => s.state === 'up' && s.figures?.poolWaiting === 0, 3 * INTERVAL_MS + MARGIN_MS);
      const acquire = Math.max(...seen.map((s) => s.figures?.poolAcquireMs ?? 0));
      t.diagnostic(`longest wait for a pooled connection measured: ${acquire} ms; up again: ${app.snapshot('db').reason}`);
      assert.deepEqual(seen.filter((s) => s.state !== 'up' && s.state !== 'degraded'), [], 'never down');
      assert.equal(app.snapshot('db').reconnectAttempts, 0);
    } finally {
      await app.close();
      await release(dataSource);
    }
  });

  it("app.close() leaves the app's data source and pool as they were, and closes the package's own probe connection", async () => {
    const extra = { max: 4, idleTimeoutMillis: 60_000 };
    const dataSource = appPostgres(server.host, server.port, { extra });
    await dataSource.initialize();
    const pool = poolOf(dataSource);
    await Promise.all([dataSource.query('SELECT 1'), dataSource.query('SELECT 2')]); // the pool now holds two connections
    const optionsBefore = structuredClone({ ...dataSource.options, entities: undefined });
    const baseline = activeHandles();
    try {
      const app = await startApp(dataSource);
      try {
        assert.equal(await probeBackends(server), 1, 'the package pings on one connection of its own');
      } finally {
        await app.close();
      }
      assert.deepEqual({ ...dataSource.options, entities: undefined }, optionsBefore, 'its options were not changed');
      assert.equal(dataSource.isInitialized, true, 'the app owns it: not destroyed');
      assert.equal(poolOf(dataSource), pool);
      assert.equal(pool.ending, false);
      assert.equal(pool.totalCount, 2, "the app's connections are untouched");
      assert.equal(await appBackends(server), 2);
      for (let i = 0; i < 20 && (await probeBackends(server)) > 0; i++) await sleep(50); // a backend exits a moment after its client left
      assert.equal(await probeBackends(server), 0, 'the probe connection is gone from pg_stat_activity');
      await sleep(100);
      assert.deepEqual(leakedHandles(baseline), {}, 'no timer or socket of the package left after app.close()');
      assert.deepEqual(await dataSource.query('SELECT 40 + 2 AS answer'), [{ answer: 42 }]);
    } finally {
      await release(dataSource);
    }
  });

  it("postgresKeepAlive, asked for an app's data source, reaches the connections its pool opens from then on", async () => {
    const dataSource = appPostgres(server.host, server.port, { synchronize: false, entities: [] });
    await dataSource.initialize();
    const optionsBefore = structuredClone(dataSource.options);
    try {
      const app = await TestApp.start({
        health: { connections: [{ name: 'db', kind: 'typeorm', dataSource, postgresKeepAlive: { initialDelayMs: 5_000 }, ...monitorOptions }] },
      });
      await app.close();
      const poolOptions = (poolOf(dataSource) as unknown as { options: Record<string, unknown> }).options;
      assert.equal(poolOptions.keepAlive, true);
      assert.equal(poolOptions.keepAliveInitialDelayMillis, 5_000);
      assert.deepEqual(dataSource.options, optionsBefore, 'nothing else changed');
    } finally {
      await release(dataSource);
    }
  });
});

describe('TypeORM: a data source the package initializes runs its schema steps once (real PostgreSQL)', () => {
  const DATABASE = 'no_harm_owned';
  let server: PostgresServer;
  before(async () => {
    server = await sharedPostgres();
    // dropSchema drops every table of the schema: a database of its own keeps it away from other tests.
    await server.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await server.query(`CREATE DATABASE ${DATABASE}`);
  });
  after(() => server.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`));

  it('a first initialize that failed is tried again; once it succeeded, dropSchema and synchronize never run again', async (t) => {
    const proxy = await ChaosProxy.start(server.host, server.port);
    t.after(() => proxy.close());
    proxy.refuse();
    const dataSource = new DataSource({
      type: 'postgres',
      host: proxy.host,
      port: proxy.port,
      username: 'postgres',
      database: DATABASE,
      entities: [orders],
      dropSchema: true,
      synchronize: true,
    });
    const app = await TestApp.start({ health: { connections: [{ name: 'db', kind: 'typeorm', dataSource, ...monitorOptions }] } });
    try {
      const refused = await app.waitForState('db', 'down', 5_000);
      t.diagnostic(`first initialize: ${refused.snapshot.reason}`);
      proxy.pass();
      await app.waitForState('db', 'up', 10_000);
      await dataSource.getRepository(orders).save([{ item: 'apples' }, { item: 'pears' }]);
      const before = app.snapshot('db').connectedAt ?? 0;
      proxy.reset(); // every connection through the proxy, the probe's and the pool's, gets an RST
      await app.waitFor('db', (s) => s.state === 'up' && (s.connectedAt ?? 0) > before, 10_000);
      await reconnect(app);
      assert.equal(await dataSource.getRepository(orders).count(), 2, 'no dropSchema after the first initialize');
    } finally {
      await app.close();
    }
    assert.equal(dataSource.isInitialized, false, 'the package initialized it, so it destroyed it at shutdown');
  });

  it('a first initialize into a silent server ends at connectTimeoutMs, and the next attempt connects once it answers', async (t) => {
    const proxy = await ChaosProxy.start(server.host, server.port);
    t.after(() => proxy.close());
    proxy.blackhole();
    const dataSource = new DataSource({ type: 'postgres', host: proxy.host, port: proxy.port, username: 'postgres', database: DATABASE });
    const app = await TestApp.start({ health: { connections: [{ name: 'db', kind: 'typeorm', dataSource, ...monitorOptions }] } });
    try {
      await app.waitForState('db', 'down', 5_000);
      await sleep(1_500); // more attempts, each bounded
      proxy.pass();
      const { elapsedMs } = await app.waitForState('db', 'up', 10_000);
      t.diagnostic(`up ${elapsedMs} ms after the server answered again`);
      assert.deepEqual(await dataSource.query('SELECT 1 AS one'), [{ one: 1 }]);
    } finally {
      await app.close();
    }
  });

  it("sets no connect timeout on the pool it creates: the app's queries may wait for a connection as long as they need", async () => {
    const dataSource = new DataSource({ type: 'postgres', host: server.host, port: server.port, username: 'postgres', database: DATABASE, extra: { max: 2 } });
    const heartbeat = { ...monitorOptions.heartbeat, connectTimeoutMs: 500 };
    const app = await TestApp.start({ health: { connections: [{ name: 'db', kind: 'typeorm', dataSource, ...monitorOptions, heartbeat }] } });
    try {
      await app.waitForState('db', 'up', 10_000);
      // Four queries on a pool of two: two wait about 1.5 s for a connection, three times connectTimeoutMs.
      const results = await Promise.allSettled(Array.from({ length: 4 }, () => dataSource.query('SELECT pg_sleep(1.5)')));
      assert.deepEqual(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')), ['ok', 'ok', 'ok', 'ok']);
    } finally {
      await app.close();
    }
  });
});

describe('TypeORM: a silent death is still noticed within the bound, and the app queries on once it heals', () => {
  let server: PostgresServer;
  before(async () => (server = await sharedPostgres()));

  /** Down within the bound, then the app's own next query within 2 s of the heal, then up. */
  async function silentDeath(t: TestContext, app: TestApp, dataSource: DataSource, fault: string, inject: () => unknown, heal: () => unknown) {
    const faultAt = now();
    await inject();
    const down = await app.waitForState('db', 'down', BOUND_MS + MARGIN_MS + 5_000, faultAt);
    t.diagnostic(`${fault}: down after ${down.elapsedMs} ms (bound ${BOUND_MS} ms): ${down.snapshot.reason}`);
    assert.ok(down.elapsedMs <= BOUND_MS + MARGIN_MS, `${fault} noticed after ${down.elapsedMs} ms`);
    await sleep(1_500); // reconnect attempts run into the silence too
    await heal();
    const healedAt = now();
    assert.deepEqual(await within(dataSource.query('SELECT 40 + 2 AS answer'), 2_000, "the app's first query after the heal"), [{ answer: 42 }]);
    t.diagnostic(`${fault}: the app's first query after the heal answered in ${Math.round(now() - healedAt)} ms`);
    const up = await app.waitForState('db', 'up', 15_000, healedAt);
    t.diagnostic(`${fault}: up again ${up.elapsedMs} ms after the heal`);
    assert.equal(dataSource.isInitialized, true);
  }

  it('a silent blackhole through the chaos proxy, with the recommended pool settings', async (t) => {
    const proxy = await ChaosProxy.start(server.host, server.port);
    t.after(() => proxy.close());
    const dataSource = appPostgres(proxy.host, proxy.port, { extra: RECOMMENDED_PG_POOL, synchronize: false, entities: [] });
    await dataSource.initialize();
    const app = await startApp(dataSource);
    try {
      await silentDeath(t, app, dataSource, 'proxy blackhole', () => proxy.blackhole(), () => proxy.pass());
    } finally {
      await app.close();
      await release(dataSource);
    }
  });

  describe('in a network namespace (kernel-level DROP, no FIN, no RST)', async () => {
    const reason = await NetworkNamespace.unsupportedReason();
    let namespace: NetworkNamespace;
    let nsServer: PostgresServer;
    before(async () => {
      if (reason) return;
      namespace = await NetworkNamespace.create();
      nsServer = await PostgresServer.start({ netns: namespace });
    });
    after(async () => {
      await nsServer?.stop();
      await namespace?.destroy();
    });

    // Skipped only where the kernel or the user forbids namespaces; CI runs as root and runs it.
    it('iptables DROP both ways, with the recommended pool settings', { skip: reason }, async (t) => {
      const dataSource = appPostgres(nsServer.host, nsServer.port, { extra: RECOMMENDED_PG_POOL, synchronize: false, entities: [] });
      await dataSource.initialize();
      const app = await startApp(dataSource);
      try {
        await silentDeath(t, app, dataSource, 'iptables DROP', () => namespace.blackhole(nsServer.port), () => namespace.heal());
      } finally {
        await namespace.heal();
        await app.close();
        await release(dataSource);
      }
    });

    it("app.close() while the server is silent: the probe connection is closed within the shutdown deadline, no socket left; the app's data source is left", { skip: reason }, async (t) => {
      const dataSource = appPostgres(nsServer.host, nsServer.port, { synchronize: false, entities: [] });
      await dataSource.initialize();
      const baseline = activeHandles();
      const shutdownTimeoutMs = 500;
      const testApp = await TestApp.start({
        health: { shutdown: { timeoutMs: shutdownTimeoutMs }, connections: [{ name: 'db', kind: 'typeorm', dataSource, ...monitorOptions }] },
      });
      try {
        await testApp.waitFor('db', (s) => s.lastBeatAt !== undefined, 10_000);
        await namespace.blackhole(nsServer.port);
        const closingAt = now();
        await testApp.close();
        const closeMs = Math.round(now() - closingAt);
        t.diagnostic(`app.close() with a silent server took ${closeMs} ms (shutdown.timeoutMs ${shutdownTimeoutMs})`);
        assert.ok(closeMs < shutdownTimeoutMs + MARGIN_MS, `app.close() took ${closeMs} ms`);
        assert.equal(dataSource.isInitialized, true);
        await sleep(100);
        // pg's pool.end() does not wait for an idle socket to close: left to itself it stays half-open for minutes.
        assert.deepEqual(leakedHandles(baseline), {}, 'the probe socket was freed; no timer left');
      } finally {
        await namespace.heal();
        await release(dataSource);
      }
    });

    it('iptables DROP while the app saturates its pool: degraded before, down within the bound all the same', { skip: reason }, async (t) => {
      const dataSource = appPostgres(nsServer.host, nsServer.port, { poolSize: 2, synchronize: false, entities: [] });
      await dataSource.initialize();
      const testApp = await startApp(dataSource);
      const seen = record(testApp);
      const sleeps = Array.from({ length: 4 }, () => dataSource.query('SELECT pg_sleep(3)').catch((error: Error) => error));
      try {
        const degraded = await testApp.waitFor('db', (s) => s.state === 'degraded', 2 * INTERVAL_MS + MARGIN_MS);
        t.diagnostic(`under pressure: ${degraded.reason}; figures ${JSON.stringify(degraded.figures)}`);
        const faultAt = now();
        await namespace.blackhole(nsServer.port);
        const down = await testApp.waitForState('db', 'down', BOUND_MS + MARGIN_MS + 5_000, faultAt);
        t.diagnostic(`iptables DROP under pressure: down after ${down.elapsedMs} ms (bound ${BOUND_MS} ms): ${down.snapshot.reason}`);
        assert.ok(down.elapsedMs <= BOUND_MS + MARGIN_MS, `noticed after ${down.elapsedMs} ms`);
        assert.ok(seen.slice(0, seen.indexOf(down.snapshot)).every((s) => s.state === 'up' || s.state === 'degraded'), 'not down before the fault');
      } finally {
        await namespace.heal();
        await within(Promise.all(sleeps), 30_000, "the app's queries after the heal");
        await testApp.close();
        await release(dataSource);
      }
    });
  });
});

describe('TypeORM over sql.js: schema steps never run again', () => {
  it('an app-owned data source with dropSchema + synchronize keeps the rows written after boot across a forced reconnect', async () => {
    const dataSource = new DataSource({ type: 'sqljs', entities: [orders], dropSchema: true, synchronize: true });
    await dataSource.initialize();
    const app = await startApp(dataSource);
    try {
      await dataSource.getRepository(orders).save([{ item: 'apples' }, { item: 'pears' }]);
      await reconnect(app);
      assert.equal(dataSource.isInitialized, true);
      assert.deepEqual((await dataSource.getRepository(orders).find()).map((order) => order.item), ['apples', 'pears']);
    } finally {
      await app.close();
    }
    assert.equal(dataSource.isInitialized, true, 'the app owns it: still open after app.close()');
    await dataSource.destroy();
  });

  it('a data source the package initializes runs its migrations and dropSchema once, however often it reconnects', async () => {
    let migrationRuns = 0;
    class CreateOrders1700000000000 implements MigrationInterface {
      name = 'CreateOrders1700000000000';
      async up(runner: QueryRunner): Promise<void> {
        migrationRuns += 1;
        await runner.query('CREATE TABLE no_harm_orders (id INTEGER PRIMARY KEY AUTOINCREMENT, item TEXT NOT NULL)');
      }
      async down(runner: QueryRunner): Promise<void> {
        await runner.query('DROP TABLE no_harm_orders');
      }
    }
    const dataSource = new DataSource({ type: 'sqljs', entities: [orders], dropSchema: true, migrations: [CreateOrders1700000000000], migrationsRun: true });
    const app = await startApp(dataSource);
    try {
      assert.equal(dataSource.isInitialized, true, 'the package initialized it');
      await dataSource.getRepository(orders).save([{ item: 'apples' }, { item: 'pears' }]);
      await reconnect(app);
      await reconnect(app);
      assert.equal(migrationRuns, 1);
      assert.equal(await dataSource.getRepository(orders).count(), 2);
    } finally {
      await app.close();
    }
    assert.equal(dataSource.isInitialized, false, 'the package owns it: destroyed at shutdown');
  });
});

/** The test's own clean-up: a failing test may find the data source closed already. */
async function release(dataSource: DataSource): Promise<void> {
  if (dataSource.isInitialized) await dataSource.destroy();
}

/** registry.get(name).forceReconnect(), and waits until the connection is up on a new session. */
async function reconnect(app: TestApp): Promise<void> {
  const before = app.snapshot('db').connectedAt ?? 0;
  app.registry.get('db').forceReconnect('test');
  await app.waitFor('db', (s) => s.state === 'up' && (s.connectedAt ?? 0) > before, 5_000);
}
