import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { SchedulerRegistry } from '@nestjs/schedule';
import { DataSource } from 'typeorm';
import { DovecotServer } from './kit/dovecot.server.js';
import { freePort } from './kit/process.util.js';
import { sharedDovecot, sharedPostgres, sharedRabbitMq } from './kit/shared-servers.js';
import { type HttpAnswer, TestApp } from './kit/test-app.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fast = { heartbeat: { intervalMs: 300, timeoutMs: 150, connectTimeoutMs: 300 }, reconnect: { initialDelayMs: 100, maxDelayMs: 200, maxAttempts: Infinity } };


describe('probe semantics of the built-in routes', () => {
  it('readiness follows required connections; liveness and startup ignore outages', async () => {
    let apiUp = false;
    let cacheUp = true;
    const app = await TestApp.start({
      health: {
        connections: [
          { name: 'api', kind: 'custom', ping: async () => void (apiUp || (await Promise.reject(new Error('ECONNREFUSED')))), ...fast },
          { name: 'cache', kind: 'custom', required: false, ping: async () => void (cacheUp || (await Promise.reject(new Error('ECONNREFUSED')))), ...fast },
        ],
      },
    });
    try {
      await app.waitForState('api', 'down', 2_000);
      assert.equal((await app.health('/health/startup')).status, 200, 'the app booted and its monitors run, though api never connected');
      assert.equal((await app.health('/health/ready')).status, 503);
      assert.equal((await app.health('/health/live')).status, 200, 'an outage is no reason to restart');

      apiUp = true;
      await app.waitForState('api', 'up', 2_000);
      const ready = await app.health('/health/ready');
      assert.deepEqual({ status: ready.status, body: ready.body.status }, { status: 200, body: 'ok' });
      // A beat may land between the two calls; the verdicts must match.
      const view = (answer: HttpAnswer) => ({ status: answer.status, body: answer.body.status, connections: Object.keys(answer.body.details) });
      assert.deepEqual(view(await app.health('/health')), view(await app.health('/health/ready')), '/health is the readiness view');

      cacheUp = false;
      await app.waitForState('cache', 'down', 2_000);
      const degraded = await app.health('/health/ready');
      assert.equal(degraded.status, 200, 'an optional connection that is down keeps 200');
      assert.equal(degraded.body.status, 'degraded');

      apiUp = false;
      await app.waitForState('api', 'down', 2_000);
      const notReady = await app.health('/health/ready');
      assert.equal(notReady.status, 503);
      assert.deepEqual(Object.keys(notReady.body.error ?? {}), ['api']);
      assert.equal((await app.health('/health/live')).status, 200);
      assert.equal((await app.health('/health/startup')).status, 200);
    } finally {
      await app.close();
    }
  });

  it('starts during a database outage: startup passes, readiness holds traffic back until PostgreSQL returns', async () => {
    const server = await sharedPostgres();
    await server.kill();
    let app: TestApp | undefined;
    try {
      app = await TestApp.start({
        health: {
          connections: [
            { name: 'db', kind: 'typeorm', dataSource: new DataSource({ type: 'postgres', host: server.host, port: server.port, username: 'postgres', database: 'postgres' }), ...fast },
          ],
        },
      });
      await app.waitForState('db', 'down', 5_000);
      const startup = await app.health('/health/startup');
      assert.deepEqual({ status: startup.status, body: startup.body.status }, { status: 200, body: 'ok' }, 'Kubernetes must not kill a pod for an outage');
      assert.equal((await app.health('/health/ready')).status, 503, 'no traffic while the database is down');
      assert.equal((await app.health('/health/live')).status, 200);
      await server.startAgain();
      await app.waitForState('db', 'up', 10_000);
      assert.equal((await app.health('/health/ready')).status, 200, 'ready by itself once the server answers');
    } finally {
      await server.startAgain();
      await app?.close();
    }
  });

  it('closes many connections without a listener-leak warning', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => void warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    const connections = Array.from({ length: 30 }, (_, i) => ({ name: `c${i}`, kind: 'custom' as const, ping: async () => undefined, ...fast }));
    const app = await TestApp.start({ health: { connections } });
    try {
      await app.waitForState('c29', 'up', 2_000);
    } finally {
      await app.close();
      await sleep(50); // warnings are emitted on the next tick
      process.removeListener('warning', onWarning);
    }
    assert.deepEqual(warnings.filter((w) => /MaxListeners/.test(w)), []);
  });

  it('fails liveness when a monitor stalls', async () => {
    const app = await TestApp.start({
      schedule: true,
      health: { connections: [{ name: 'cache', kind: 'custom', ping: async () => undefined, heartbeat: { intervalMs: 200, timeoutMs: 100, staleAfterMs: 500 } }] },
    });
    try {
      await app.waitFor('cache', (s) => s.lastBeatAt !== undefined, 2_000);
      app.app.get(SchedulerRegistry).deleteTimeout('connection-health:cache');
      await sleep(800);
      const live = await app.health('/health/live');
      assert.equal(live.status, 503);
      assert.match(String(live.body.details.cache?.reason), /the monitor is stalled/);
    } finally {
      await app.close();
    }
  });

  it('answers 503 shutting_down from the first moment of shutdown while it still serves during the drain delay', async () => {
    const app = await TestApp.start({
      health: { connections: [{ name: 'cache', kind: 'custom', ping: async () => undefined, ...fast }], shutdown: { drainDelayMs: 1_000 } },
    });
    await app.waitForState('cache', 'up', 2_000);
    const closing = app.close();
    await sleep(100);
    const during = await app.health('/health/ready');
    assert.equal(during.status, 503);
    assert.equal(during.body.status, 'shutting_down');
    assert.equal(during.body.details.cache?.state, 'up', 'connections stay open while load balancers notice');
    await closing;
  });

  for (const details of ['full', 'status', 'none'] as const) {
    it(`shows no credential at detail level '${details}'`, async () => {
      const dataSource = new DataSource({ type: 'postgres', url: 'postgres://app:hunter2@127.0.0.1:1/orders' });
      const app = await TestApp.start({
        healthController: { details },
        health: {
          connections: [
            { name: 'db', kind: 'typeorm', dataSource, ...fast },
            { name: 'api', kind: 'custom', ping: () => Promise.reject(new Error('login failed for https://svc:hunter2@api.internal password=hunter2')), ...fast },
          ],
        },
      });
      try {
        await app.waitForState('db', 'down', 3_000);
        await app.waitForState('api', 'down', 3_000);
        for (const route of ['/health', '/health/ready', '/health/live', '/health/startup']) {
          const { body } = await app.health(route);
          assert.doesNotMatch(JSON.stringify(body), /hunter2/, route);
        }
        const { status, body } = await app.health();
        assert.equal(status, 503);
        const down = { db: { status: 'down' }, api: { status: 'down' } };
        const expected = { none: { status: 'error' }, status: { status: 'error', info: {}, error: down, details: down } };
        if (details === 'full') assert.match(String(body.details.api?.lastError), /https:\/\/\*\*\*@api\.internal password=\*\*\*/);
        else assert.deepEqual(body as object, expected[details]);
      } finally {
        await app.close();
      }
    });
  }
});

describe('a shutdown forced before the connections closed', () => {
  it('still closes every adapter at once: PostgreSQL, dovecot and RabbitMQ see no session left', async () => {
    const [server, dovecot, rabbit] = await Promise.all([sharedPostgres(), sharedDovecot(), sharedRabbitMq()]);
    const sessions = async () => (await server.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'ch-forced'`))[0]?.n;
    const stompConnections = async () => (await rabbit.ctl(['list_stomp_connections', 'conn_name'])).split('\n').filter((line) => line.includes('->')).length;
    // Like app.enableShutdownHooks(), a listener of the test's own: the signal raised again after the
    // forced close must not end the test process.
    const heardByTheApp: string[] = [];
    const listener = (signal: string) => void heardByTheApp.push(signal);
    process.on('SIGTERM', listener);
    const app = await TestApp.start({
      health: {
        connections: [
          {
            name: 'pg',
            kind: 'typeorm',
            dataSource: new DataSource({ type: 'postgres', host: server.host, port: server.port, username: 'postgres', database: 'postgres', extra: { application_name: 'ch-forced' } }),
            ...fast,
          },
          { name: 'mail', kind: 'imap', client: 'imapflow', host: dovecot.host, port: dovecot.port, auth: { user: 'test', pass: 'test' }, ...fast },
          { name: 'broker', kind: 'stomp', host: rabbit.host, port: rabbit.port, login: 'guest', passcode: 'guest', ...fast },
        ],
        shutdown: { drainDelayMs: 20_000, timeoutMs: 20_000 },
      },
    });
    let closing: Promise<void> | undefined;
    try {
      for (const name of ['pg', 'mail', 'broker']) await app.waitForState(name, 'up', 10_000);
      assert.ok((await sessions()) >= 1 && (await dovecot.who(DovecotServer.user)).length === 1 && (await stompConnections()) >= 1);
      closing = app.close();
      await sleep(1_200); // a signal within a second of the shutdown's start counts as the same one
      const forcedAt = Date.now();
      process.kill(process.pid, 'SIGTERM'); // a signal during the drain: it forces
      await closing;
      const tookMs = Date.now() - forcedAt;
      assert.ok(tookMs < 1_000, `closed ${tookMs} ms after the forcing signal`);
      await sleep(300);
      assert.equal(await sessions(), 0, 'the pg pool is gone');
      assert.equal((await dovecot.who(DovecotServer.user)).length, 0, 'the IMAP session is gone');
      assert.equal(await stompConnections(), 0, 'the STOMP connection is gone');
      assert.deepEqual(heardByTheApp, ['SIGTERM', 'SIGTERM'], 'the signal reached the app, and again once the close was done');
    } finally {
      await (closing ?? app.close());
      process.removeListener('SIGTERM', listener);
    }
  });
});

/** Runs the operations fixture app as a real process. */
async function startFixture(scenario: string, env: Record<string, string> = {}) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(here, 'fixtures', 'operations.app.js')], {
    env: { ...process.env, ...env, CH_SCENARIO: scenario, PORT: String(port), NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { text: '' };
  child.stdout?.on('data', (chunk) => (output.text += chunk));
  child.stderr?.on('data', (chunk) => (output.text += chunk));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const deadline = Date.now() + 20_000;
  while (!output.text.includes('listening') && child.exitCode === null && Date.now() < deadline) await sleep(50);
  const probe = async (route: string) => {
    const response = await fetch(`http://127.0.0.1:${port}${route}`, { headers: { connection: 'close' } });
    return { status: response.status, body: (await response.json()) as { status: string } };
  };
  /** Until readiness answers 200 (10 s at most). */
  const ready = async () => {
    for (let i = 0; i < 100 && (await probe('/health/ready')).status !== 200; i++) await sleep(100);
  };
  /** The exit code, or 'still running' after `ms`. */
  const exitedWithin = (ms: number) => Promise.race([exited, sleep(ms).then(() => ['still running'] as const)]);
  return { child, output, exited, probe, ready, exitedWithin };
}

function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

describe('operations in a real process', () => {
  it('drains on SIGTERM: readiness 503 at once; PostgreSQL, dovecot and RabbitMQ see their sessions end politely; exit 0 in time', async () => {
    const [server, dovecot, rabbit] = await Promise.all([sharedPostgres(), sharedDovecot(), sharedRabbitMq()]);
    const env = {
      CH_PG_HOST: server.host,
      CH_PG_PORT: String(server.port),
      CH_IMAP_HOST: dovecot.host,
      CH_IMAP_PORT: String(dovecot.port),
      CH_RABBITMQ_HOST: rabbit.host,
      CH_RABBITMQ_PORT: String(rabbit.port),
    };
    const sessions = async () => (await server.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'ch-drain'`))[0]?.n;
    // The STOMP plugin lists its own connections, one per line under a header.
    const stompConnections = async () => (await rabbit.ctl(['list_stomp_connections', 'conn_name'])).split('\n').filter((line) => line.includes('->')).length;
    const startedAt = Date.now();
    const app = await startFixture('drain', env);
    try {
      await app.ready();
      assert.equal((await app.probe('/health/ready')).status, 200, app.output.text);
      assert.ok((await sessions()) >= 1, 'the app holds a PostgreSQL session');
      assert.equal((await dovecot.who(DovecotServer.user)).length, 1, 'and an IMAP session');
      assert.ok((await stompConnections()) >= 1, 'and a STOMP connection');

      const signalledAt = Date.now();
      app.child.kill('SIGTERM');
      await sleep(150);
      const during = await app.probe('/health/ready');
      assert.deepEqual({ status: during.status, body: during.body.status }, { status: 503, body: 'shutting_down' });
      const [code, signal] = await app.exited;
      const tookMs = Date.now() - signalledAt;
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, app.output.text);
      assert.ok(tookMs >= 1_000 && tookMs < 1_000 + 3_000 + 2_000, `exited ${tookMs} ms after SIGTERM (drain 1000 + deadline 3000)`);
      await sleep(300);
      assert.equal(await sessions(), 0, 'PostgreSQL saw the session end');
      assert.equal((await dovecot.who(DovecotServer.user)).length, 0, 'dovecot saw the session end');
      const [mail] = dovecot.transcripts(startedAt);
      assert.ok(mail?.commands.some((c) => /^\S+ LOGOUT/i.test(c.line)), 'after a LOGOUT');
      assert.equal(await stompConnections(), 0, 'RabbitMQ saw the STOMP connection end');
      for (const name of ['pg', 'mail', 'broker']) assert.match(app.output.text, new RegExp(`${name}: closing -> closed`));
      assert.doesNotMatch(app.output.text, /by force/, 'every session closed politely, none at the deadline');
    } finally {
      kill(app.child);
    }
  });

  it('forces every connection closed at a second signal', async () => {
    const app = await startFixture('hung-close');
    try {
      await app.ready();
      const signalledAt = Date.now();
      app.child.kill('SIGTERM');
      await sleep(1_200);
      app.child.kill('SIGTERM');
      const [code] = await app.exited;
      const tookMs = Date.now() - signalledAt;
      assert.equal(code, 0, app.output.text);
      assert.ok(tookMs < 1_200 + 1_000 + 1_000, `exited ${tookMs} ms after the first SIGTERM: within 1 s of the second (+1 s margin), not after the 20 s drain`);
      assert.match(app.output.text, /SIGTERM during shutdown: closing every connection by force now/);
      assert.match(app.output.text, /stubborn close called \(aborted: true\)/, "the adapter's close runs, told to force");
      assert.match(app.output.text, /stubborn: closing -> closed \(Connection "stubborn" was closed on purpose, by force: forced by a second signal \(SIGTERM\)\)/);
    } finally {
      kill(app.child);
    }
  });

  it('ends the process after SIGTERM although app code left an interval and a listening socket behind', async () => {
    const app = await startFixture('leftovers');
    try {
      await app.ready();
      const signalledAt = Date.now();
      app.child.kill('SIGTERM');
      const [code] = await app.exitedWithin(8_000);
      const tookMs = Date.now() - signalledAt;
      assert.equal(code, 0, app.output.text);
      assert.ok(tookMs < 500 + 1_000 + 1_000, `exited ${tookMs} ms after SIGTERM: within drainDelayMs 500 + timeoutMs 1000 + 1 s`);
    } finally {
      kill(app.child);
    }
  });

  it('takes a signal delivered twice at once (npm and the terminal both pass it on) as one, not as a forcing second', async () => {
    const app = await startFixture('drain-only');
    try {
      await app.ready();
      const signalledAt = Date.now();
      app.child.kill('SIGINT');
      await sleep(20);
      app.child.kill('SIGINT');
      const [code] = await app.exited;
      const tookMs = Date.now() - signalledAt;
      assert.equal(code, 0, app.output.text);
      assert.doesNotMatch(app.output.text, /by force/);
      assert.ok(tookMs >= 1_000, `the 1 s drain was kept (${tookMs} ms)`);
    } finally {
      kill(app.child);
    }
  });

  it("lets another SIGTERM listener of the app's finish its work before the process ends with 0", async () => {
    const app = await startFixture('telemetry-flush');
    try {
      await app.ready();
      app.child.kill('SIGTERM');
      const [code] = await app.exitedWithin(8_000);
      assert.equal(code, 0, app.output.text);
      assert.match(app.output.text, /flushed/, 'the flush was not cut short');
    } finally {
      kill(app.child);
    }
  });

  it('forces when Ctrl+C is pressed again and again, each press delivered twice, less than a second apart', async () => {
    const app = await startFixture('hung-hook');
    try {
      await app.ready();
      const firstAt = Date.now();
      for (let press = 0; press < 4; press++) {
        app.child.kill('SIGINT');
        await sleep(20);
        app.child.kill('SIGINT'); // the same press, passed on by npm
        await sleep(600);
      }
      const [code] = await app.exitedWithin(8_000);
      assert.equal(code, 130, `128 + SIGINT, forced by a later press\n${app.output.text}`);
      assert.ok(Date.now() - firstAt < 4 * 620 + 1_000 + 1_000);
    } finally {
      kill(app.child);
    }
  });

  it("ends the process within a second of a second signal when an app's own shutdown hook never returns", async () => {
    const app = await startFixture('hung-hook');
    try {
      await app.ready();
      app.child.kill('SIGTERM');
      for (let i = 0; i < 50 && !app.output.text.includes('the app hook hangs'); i++) await sleep(100);
      const ready = await app.probe('/health/ready');
      assert.deepEqual({ status: ready.status, body: ready.body.status }, { status: 503, body: 'shutting_down' }, "draining from the first signal, while the app's own hooks run");
      await sleep(1_200);
      const secondAt = Date.now();
      app.child.kill('SIGTERM');
      const [code] = await app.exitedWithin(8_000);
      const tookMs = Date.now() - secondAt;
      assert.equal(code, 143, `128 + SIGTERM, as the signal itself would end it\n${app.output.text}`);
      assert.ok(tookMs < 1_000 + 1_000, `exited ${tookMs} ms after the second SIGTERM (1 s, +1 s margin)`);
    } finally {
      kill(app.child);
    }
  });

  it('exits with the dead-man code when a required connection stays down, logging why at fatal level', async () => {
    const app = await startFixture('dead-man');
    try {
      const [code] = await app.exited;
      assert.equal(code, 4, app.output.text);
      assert.match(app.output.text, /FATAL.*Dead-man switch: "ledger" has been down for 1000 ms \(.*ECONNREFUSED postgres:\/\/\*\*\*@ledger-db:5432.*\); exiting with code 4/);
      assert.doesNotMatch(app.output.text, /s3cr3t/);
    } finally {
      kill(app.child);
    }
  });

  it("waits out downForMs although the connection failed for good long before, as 'retry' goes on trying", async () => {
    const app = await startFixture('dead-man-after-failed');
    try {
      let failedAt = 0;
      for (let i = 0; i < 100 && !failedAt; i++) {
        if (/ledger: reconnecting -> failed/.test(app.output.text)) failedAt = Date.now();
        else await sleep(50);
      }
      assert.ok(failedAt, app.output.text);
      const [code] = await app.exited;
      const afterFailedMs = Date.now() - failedAt;
      assert.equal(code, 4, app.output.text);
      assert.ok(afterFailedMs >= 1_500, `exited ${afterFailedMs} ms after 'failed': the outage had not lasted downForMs 3000 yet`);
      assert.match(app.output.text, /Dead-man switch: "ledger" has been down for 3000 ms/);
    } finally {
      kill(app.child);
    }
  });
});
