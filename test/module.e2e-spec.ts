import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SchedulerRegistry } from '@nestjs/schedule';
import { DataSource } from 'typeorm';
import { TcpListener } from './kit/tcp-listener.js';
import { activeHandles, leakedHandles, TestApp } from './kit/test-app.js';

const fast = { heartbeat: { intervalMs: 300, timeoutMs: 150, jitter: 0 }, reconnect: { initialDelayMs: 100, maxDelayMs: 400, maxAttempts: Infinity } };
const sqliteProvider = { provide: DataSource, useFactory: () => new DataSource({ type: 'sqljs' }) };
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('ConnectionHealthModule with SQLite (sql.js)', () => {
  it('reports an initialized data source up, from its snapshot, as whole JSON', async () => {
    const app = await TestApp.start({
      health: { connections: [{ name: 'db', kind: 'typeorm', dataSource: DataSource, ...fast }] },
      providers: [sqliteProvider],
    });
    try {
      await app.waitFor('db', (s) => s.lastBeatAt !== undefined, 2_000);
      const { status, body } = await app.health('/terminus');
      assert.equal(status, 200);
      assert.deepEqual(await app.health('/health'), { status, body }, 'the built-in route answers the same');
      const db = body.details.db as Record<string, unknown>;
      assert.match(String(db.since), ISO);
      assert.match(String(db.lastBeatAt), ISO);
      assert.equal(typeof db.rttMs, 'number');
      assert.deepEqual(body, {
        status: 'ok',
        info: { db: { ...db } },
        error: {},
        details: {
          db: {
            kind: 'typeorm',
            target: 'sqljs',
            state: 'up',
            since: db.since,
            reason: 'connected',
            lastBeatAt: db.lastBeatAt,
            rttMs: db.rttMs,
            reconnectAttempts: 0,
            required: true,
            status: 'up',
          },
        },
      });
    } finally {
      await app.close();
    }
  });

  it('works the same through forRootAsync', async () => {
    const app = await TestApp.start({
      async: true,
      health: { connections: [{ name: 'db', kind: 'typeorm', dataSource: DataSource, ...fast }] },
      providers: [sqliteProvider],
    });
    try {
      await app.waitForState('db', 'up', 2_000);
      assert.equal((await app.health()).status, 200);
    } finally {
      await app.close();
    }
  });

  it('initializes a data source nobody initialized, and destroys it at shutdown because it opened it', async () => {
    const dataSource = new DataSource({ type: 'sqljs' });
    const app = await TestApp.start({ health: { connections: [{ name: 'db', kind: 'typeorm', dataSource, ...fast }] } });
    await app.waitForState('db', 'up', 2_000);
    assert.equal(dataSource.isInitialized, true);
    await app.close();
    assert.equal(dataSource.isInitialized, false);
  });

  it('registers one named timer per connection in SchedulerRegistry and leaves none after close', async () => {
    const app = await TestApp.start({
      schedule: true,
      health: { connections: [{ name: 'db', kind: 'typeorm', dataSource: DataSource, ...fast }] },
      providers: [sqliteProvider],
    });
    const registry = app.app.get(SchedulerRegistry);
    await app.waitForState('db', 'up', 2_000);
    assert.deepEqual(registry.getTimeouts(), ['connection-health:db']);
    await app.close();
    assert.deepEqual(registry.getTimeouts(), []);
  });
});

describe('defaults by kind', () => {
  it('beats IMAP every 2 minutes unless the module or the connection says otherwise', async () => {
    const imap = { kind: 'imap', client: 'imapflow', host: '127.0.0.1', port: 1, auth: { user: 'u', pass: 'p' } } as const;
    const app = await TestApp.start({
      health: {
        connections: [
          { name: 'mail', ...imap },
          { name: 'mail-fast', ...imap, heartbeat: { intervalMs: 20_000 } },
          { name: 'db', kind: 'custom', ping: async () => undefined },
        ],
      },
    });
    try {
      // staleAfterMs is 2 * (intervalMs + timeoutMs), the timeout being 5 000 by default
      assert.equal(app.snapshot('mail').staleAfterMs, 2 * (120_000 + 5_000));
      assert.equal(app.snapshot('mail-fast').staleAfterMs, 2 * (20_000 + 5_000));
      assert.equal(app.snapshot('db').staleAfterMs, 2 * (30_000 + 5_000));
    } finally {
      await app.close();
    }
    const withModuleDefault = await TestApp.start({ health: { defaults: { heartbeat: { intervalMs: 10_000 } }, connections: [{ name: 'mail', ...imap }] } });
    try {
      assert.equal(withModuleDefault.snapshot('mail').staleAfterMs, 2 * (10_000 + 5_000), "the module's defaults beat the kind's");
    } finally {
      await withModuleDefault.close();
    }
  });
});

// Bad configurations: test/bad-config.e2e-spec.ts.

describe('TCP connections against a real listener', () => {
  const listener = new TcpListener();
  before(() => listener.listen());
  after(() => listener.stop());

  it('probes: down when the listener goes away, up again when it is back, with no app restart', async () => {
    const app = await TestApp.start({ health: { connections: [{ name: 'smtp', kind: 'tcp', host: '127.0.0.1', port: listener.port, ...fast }] } });
    try {
      await app.waitForState('smtp', 'up', 2_000);
      const faultAt = performance.timeOrigin + performance.now();
      await listener.stop();
      const { elapsedMs } = await app.waitForState('smtp', 'down', 3_000, faultAt);
      assert.ok(elapsedMs <= 300 + 150 + 250, `down after ${elapsedMs} ms, bound intervalMs + timeoutMs = 450 ms`);
      assert.equal((await app.health()).status, 503);
      await listener.listen();
      await app.waitForState('smtp', 'up', 3_000);
      assert.equal((await app.health()).status, 200);
    } finally {
      await app.close();
    }
  });

  it('holds: a reset of the held connection is noticed at once, without waiting for a beat', async () => {
    const app = await TestApp.start({
      health: { connections: [{ name: 'smtp', kind: 'tcp', mode: 'hold', host: '127.0.0.1', port: listener.port, ...fast, heartbeat: { intervalMs: 60_000, timeoutMs: 1_000 } }] },
    });
    try {
      await app.waitForState('smtp', 'up', 2_000);
      const faultAt = performance.timeOrigin + performance.now();
      await listener.stop();
      const { elapsedMs, snapshot } = await app.waitForState('smtp', 'down', 2_000, faultAt);
      assert.ok(elapsedMs < 500, `noticed after ${elapsedMs} ms with a 60 s interval`);
      assert.match(snapshot.reason, /connection lost: 127\.0\.0\.1:\d+ (reset|closed) the connection/);
      await listener.listen();
      await app.waitForState('smtp', 'up', 3_000);
    } finally {
      await app.close();
    }
  });
});

describe('custom pings and health semantics', () => {
  it('declares a hung ping down at its deadline and answers 503 with a redacted reason', async () => {
    let hang = false;
    const ping = (signal: AbortSignal) =>
      hang ? new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('redis://app:hunter2@cache aborted')))) : Promise.resolve();
    const app = await TestApp.start({ health: { connections: [{ name: 'cache', kind: 'custom', ping, ...fast }] } });
    try {
      await app.waitForState('cache', 'up', 2_000);
      hang = true;
      const faultAt = performance.timeOrigin + performance.now();
      const { elapsedMs, snapshot } = await app.waitForState('cache', 'down', 2_000, faultAt);
      assert.ok(elapsedMs <= 450 + 250, `down after ${elapsedMs} ms`);
      assert.match(snapshot.reason, /no heartbeat answer within 150 ms/);
      const { status, body } = await app.health();
      assert.equal(status, 503);
      assert.equal(body.status, 'error');
      assert.doesNotMatch(JSON.stringify(body), /hunter2/);
    } finally {
      await app.close();
    }
  });

  it('reports an optional connection that is down as degraded, keeping 200', async () => {
    const app = await TestApp.start({
      health: {
        connections: [
          { name: 'primary', kind: 'custom', ping: async () => undefined, ...fast },
          { name: 'analytics', kind: 'custom', required: false, ping: () => Promise.reject(new Error('ECONNREFUSED')), ...fast },
        ],
      },
    });
    try {
      await app.waitForState('primary', 'up', 2_000);
      await app.waitForState('analytics', 'down', 2_000);
      const { status, body } = await app.health();
      assert.equal(status, 200);
      assert.equal(body.status, 'degraded');
      assert.equal(body.details.analytics?.status, 'degraded');
      assert.equal(body.details.analytics?.state, 'down');
    } finally {
      await app.close();
    }
  });

  it('reads a connection whose heartbeats stopped as down once its snapshot is stale', async () => {
    const app = await TestApp.start({
      schedule: true,
      health: { connections: [{ name: 'cache', kind: 'custom', ping: async () => undefined, heartbeat: { intervalMs: 200, timeoutMs: 100, staleAfterMs: 600 } }] },
    });
    try {
      await app.waitFor('cache', (s) => s.lastBeatAt !== undefined, 2_000);
      app.app.get(SchedulerRegistry).deleteTimeout('connection-health:cache'); // the app paused the job
      await sleep(900);
      const { status, body } = await app.health();
      assert.equal(status, 503);
      assert.equal(body.details.cache?.state, 'up');
      assert.match(String(body.details.cache?.reason), /no sign of life for \d+ ms: the monitor is stalled/);
    } finally {
      await app.close();
    }
  });
});

describe('shutdown', () => {
  it('leaves no timer, socket or server behind after app.close()', async () => {
    const listener = new TcpListener();
    await listener.listen();
    await sleep(50);
    const baseline = activeHandles();
    const app = await TestApp.start({
      schedule: true,
      health: {
        connections: [
          { name: 'db', kind: 'typeorm', dataSource: new DataSource({ type: 'sqljs' }), ...fast },
          { name: 'held', kind: 'tcp', mode: 'hold', host: '127.0.0.1', port: listener.port, ...fast },
          { name: 'hung', kind: 'custom', ping: () => new Promise(() => undefined), ...fast, heartbeat: { ...fast.heartbeat, connectTimeoutMs: 200 } },
        ],
      },
    });
    try {
      await app.waitForState('held', 'up', 2_000);
      await app.waitForState('hung', 'down', 2_000);
      assert.ok((activeHandles().Timeout ?? 0) > (baseline.Timeout ?? 0), 'monitors hold timers while running');
    } finally {
      await app.close();
    }
    await sleep(50);
    assert.deepEqual(leakedHandles(baseline), {});
    await listener.stop();
  });
});
