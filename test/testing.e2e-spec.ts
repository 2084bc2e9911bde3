import 'reflect-metadata';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it, mock } from 'node:test';
import { Controller, Get, Injectable, Module, type INestApplication, type OnApplicationBootstrap } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import {
  ConnectionHandle,
  ConnectionHealthIndicator,
  ConnectionHealthModule,
  ConnectionHealthRegistry,
  InjectConnection,
  OnConnectionFailed,
  OnConnectionLost,
  OnConnectionRecovered,
  type ConnectionEvent,
  type StateChangeEvent,
} from '../lib/index.js';
import { ConnectionHealthTesting } from '../lib/testing/index.js';
import { freePort } from './kit/process.util.js';

/**
 * The testing entry point used as an app's own tests would: the app's module as it is in production,
 * Test.createTestingModule, and ConnectionHealthTesting driving its connections. No server runs: the
 * controlled connections never reach theirs (the cache's ping counts the calls that would).
 */
const metrics = new Registry();
let cachePings = 0;

/** The app's own reaction to its database: what a user tests. */
@Injectable()
class OrderService implements OnApplicationBootstrap {
  acceptingOrders = true;
  readonly seen: string[] = [];
  readonly events: ConnectionEvent[] = [];

  constructor(@InjectConnection('db') private readonly db: ConnectionHandle) {}

  onApplicationBootstrap(): void {
    this.db.events$.subscribe((event) => this.events.push(event));
  }

  @OnConnectionLost('db')
  lost(event: StateChangeEvent): void {
    this.acceptingOrders = false;
    this.seen.push(`lost: ${event.reason}`);
  }

  @OnConnectionRecovered('db')
  recovered(): void {
    this.acceptingOrders = true;
    this.seen.push('recovered');
  }

  @OnConnectionFailed('db')
  failed(event: StateChangeEvent): void {
    this.seen.push(`failed: ${event.reason}`);
  }
}

@Controller('terminus')
class AppHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly connections: ConnectionHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.connections.isHealthy()]);
  }
}

@Module({
  imports: [
    TerminusModule,
    ConnectionHealthModule.forRoot({
      connections: [
        { name: 'db', kind: 'typeorm', dataSource: DataSource, reconnect: { maxAttempts: 3 } },
        { name: 'cache', kind: 'custom', required: false, ping: async () => void cachePings++ },
      ],
      metrics: { registry: metrics },
      healthController: { details: 'full' },
    }),
  ],
  providers: [OrderService, { provide: DataSource, useFactory: () => new DataSource({ type: 'sqljs' }) }],
  controllers: [AppHealthController],
})
class AppModule {}

async function get(app: INestApplication, path: string): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(`${await app.getUrl()}${path}`.replace('[::1]', '127.0.0.1'));
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

async function metric(name: string, labels: Record<string, string>): Promise<number | undefined> {
  const found = (await metrics.getMetricsAsJSON()).find((m) => m.name === name);
  const values = found?.values as Array<{ value: number; labels: Record<string, string | number> }> | undefined;
  return values?.find((v) => Object.entries(labels).every(([key, value]) => v.labels[key] === value))?.value;
}

const stateChanges = (service: OrderService) =>
  service.events.flatMap((event) => (event.type === 'state' ? [`${event.from}->${event.to}`] : []));

describe('nestjs-connection-health/testing, as an app uses it', () => {
  let testing: ConnectionHealthTesting;
  let app: INestApplication;
  let orders: OrderService;

  before(async () => {
    testing = new ConnectionHealthTesting();
    const moduleRef = await testing.override(Test.createTestingModule({ imports: [AppModule] })).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    orders = app.get(OrderService);
  });

  after(async () => {
    await app.close();
  });

  it('starts every connection up, with the real kind and target, and never calls the real one', async () => {
    const { status, body } = await get(app, '/health');
    assert.equal(status, 200);
    assert.equal(body.details.db.state, 'up');
    assert.equal(body.details.db.kind, 'typeorm');
    assert.equal(body.details.db.target, 'sqljs');
    assert.equal(body.details.cache.state, 'up');
    assert.equal(app.get(DataSource).isInitialized, false, 'the controlled data source was never opened');
  });

  it('runs heartbeats on fake time: five minutes of beats in no real time', async () => {
    const startedAt = performance.now();
    const before = orders.events.filter((event) => event.type === 'heartbeat').length;
    const fakeStart = testing.clock.now();
    await testing.clock.advance(300_000);
    const beats = orders.events.filter((event) => event.type === 'heartbeat').length - before;
    // intervalMs 30 000 with jitter 0.1 (it only shortens the interval): 10 to 12 beats in 300 s.
    assert.ok(beats >= 10 && beats <= 12, `${beats} beats`);
    assert.ok(performance.now() - startedAt < 5_000, 'no real waiting');
    assert.equal(testing.clock.now() - fakeStart, 300_000);
    const db = app.get(ConnectionHealthRegistry).get('db').snapshot();
    assert.ok(testing.clock.now() - (db.lastBeatAt ?? 0) <= 30_000, 'the last beat is dated on the fake clock');
    assert.equal(cachePings, 0, 'the real ping of a controlled connection is never called');
  });

  it('down(): the app reacts, /health answers 503, metrics read 0; up(): it recovers after the real backoff', async () => {
    orders.events.length = 0;
    await testing.connection('db').down('network cut');

    assert.equal(orders.acceptingOrders, false);
    assert.match(orders.seen.at(-1) ?? '', /^lost: connection lost: .*network cut/);
    assert.deepEqual(stateChanges(orders), ['up->down']);
    const down = await get(app, '/health');
    assert.equal(down.status, 503);
    assert.equal(down.body.details.db.state, 'down');
    assert.match(down.body.details.db.reason, /network cut/);
    assert.equal(await metric('connection_health_up', { connection: 'db' }), 0);

    const lostAt = testing.clock.now();
    await testing.connection('db').up();
    // The first reconnect attempt waits reconnect.initialDelayMs (1 000) less up to 50 % jitter, on fake time.
    const waited = testing.clock.now() - lostAt;
    assert.ok(waited >= 500 && waited <= 1_000, `waited ${waited} ms`);
    assert.equal(orders.acceptingOrders, true);
    assert.equal(orders.seen.at(-1), 'recovered');
    assert.deepEqual(stateChanges(orders), ['up->down', 'down->reconnecting', 'reconnecting->up']);
    assert.equal((await get(app, '/health')).status, 200);
    assert.equal(await metric('connection_health_up', { connection: 'db' }), 1);
  });

  it('degrade(): readiness still serves, the Terminus indicator says degraded (never 500); up() restores it at the next beat', async () => {
    orders.events.length = 0;
    await testing.connection('db').degrade('pool saturated');
    assert.deepEqual(stateChanges(orders), ['up->degraded']);
    const health = await get(app, '/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.details.db.state, 'degraded');
    assert.equal(health.body.details.db.reason, 'pool saturated');
    const terminus = await get(app, '/terminus');
    assert.equal(terminus.status, 200);
    assert.equal(terminus.body.details.db.status, 'degraded');
    assert.equal(orders.acceptingOrders, true, 'degraded is not a loss');

    await testing.connection('db').up();
    assert.deepEqual(stateChanges(orders), ['up->degraded', 'degraded->up']);
  });

  it('fail(): every reconnect attempt fails with the real backoff until the connection is failed; up() recovers it', async () => {
    orders.events.length = 0;
    await testing.connection('db').fail('database gone');
    assert.deepEqual(stateChanges(orders), [
      'up->down',
      'down->reconnecting',
      'reconnecting->down',
      'down->reconnecting',
      'reconnecting->down',
      'down->reconnecting',
      'reconnecting->failed',
    ]);
    assert.match(orders.seen.at(-1) ?? '', /^failed: gave up after 3 reconnect attempt\(s\): .*database gone/);
    const failed = await get(app, '/health');
    assert.equal(failed.status, 503);
    assert.equal(failed.body.details.db.state, 'failed');
    assert.equal(await metric('connection_health_state', { connection: 'db', state: 'failed' }), 1);

    // The default failure policy 'retry' goes on trying every maxDelayMs: up() moves the clock to that attempt.
    await testing.connection('db').up();
    assert.equal(orders.seen.at(-1), 'recovered');
    assert.equal((await get(app, '/health')).status, 200);
  });

  it('refuses a misspelt connection name, listing the known ones', () => {
    assert.throws(() => testing.connection('dbb'), {
      message: 'No connection named "dbb" is monitored by the app under test. Known connections: "db", "cache".',
    });
  });
});

describe('nestjs-connection-health/testing: options and refusals', () => {
  @Module({
    imports: [
      ConnectionHealthModule.forRoot({
        connections: [
          { name: 'db', kind: 'custom', ping: async () => undefined, reconnect: { maxAttempts: Infinity } },
          { name: 'queue', kind: 'custom', ping: async () => undefined, failure: { policy: 'exit' } },
          { name: 'real', kind: 'custom', required: false, ping: async () => void realPings++ },
          { name: 'stops', kind: 'custom', ping: async () => undefined, reconnect: { maxAttempts: 1 }, failure: { policy: 'stop' } },
        ],
      }),
    ],
  })
  class SmallModule {}
  let realPings = 0;

  async function start(testing: ConnectionHealthTesting): Promise<INestApplication> {
    const moduleRef = await testing.override(Test.createTestingModule({ imports: [SmallModule] })).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    return app;
  }

  it('starts a connection down when told before app.init(), and leaves the uncontrolled ones real', async () => {
    const testing = new ConnectionHealthTesting({ connections: ['db', 'queue', 'stops'] });
    await testing.connection('db').down('not there at deploy');
    const app = await start(testing);
    try {
      const registry = app.get(ConnectionHealthRegistry);
      assert.equal(registry.get('db').state, 'down');
      assert.match(registry.get('db').snapshot().reason, /^connect failed: .*not there at deploy/);
      assert.equal(realPings, 1, 'the uncontrolled connection opened for real (a custom open is its first ping)');
      await testing.clock.advance(30_000);
      assert.equal(realPings, 2, 'and beats for real, on the fake clock');
      assert.throws(() => testing.connection('real'), {
        message:
          'Connection "real" is not controlled by this ConnectionHealthTesting: it runs as configured. ' +
          'Add it to the connections option (now "db", "queue", "stops"), or leave that option out to control every connection.',
      });
    } finally {
      await app.close();
    }
    assert.equal(testing.clock.pendingTimers, 0, 'no timer survives app.close()');
  });

  it("advances under the test tool's fake timers, in both builds: node:test's mock.timers replaces the timers module's setImmediate too", async () => {
    const builds = {
      esm: (await import('../lib/testing/index.js')).FakeClock,
      cjs: (createRequire(import.meta.url)('../../dist/cjs/testing/index.js') as typeof import('../lib/testing/index.js')).FakeClock,
    };
    mock.timers.enable({ apis: ['setImmediate'] });
    try {
      for (const [build, FakeClock] of Object.entries(builds)) {
        const clock = new FakeClock(0);
        let fired = false;
        clock.setTimer(() => (fired = true), 1_000);
        // The mocked setImmediate never runs here: a clock that waited on it would hang until the real timeout.
        const outcome = await Promise.race([clock.advance(1_000).then(() => 'advanced'), sleep(5_000).then(() => 'hung')]);
        assert.equal(outcome, 'advanced', build);
        assert.equal(fired, true, build);
      }
    } finally {
      mock.timers.reset();
    }
  });

  it('refuses its clock before override(): a test advancing it would drive no app and pass without testing anything', () => {
    assert.throws(() => new ConnectionHealthTesting().clock.advance(30_000), { message: /testing\.clock is used before testing\.override\(/ });
  });

  it('refuses to fail a connection that never gives up, or one whose failure would exit the test process', async () => {
    const testing = new ConnectionHealthTesting({ connections: ['db', 'queue'] });
    const app = await start(testing);
    try {
      await assert.rejects(testing.connection('db').fail(), {
        message: 'Connection "db" never fails: its reconnect.maxAttempts is Infinity. Give it a finite maxAttempts, or test the outage with down().',
      });
      await assert.rejects(testing.connection('queue').fail(), /Connection "queue" has the failure policy 'exit': failing it would end the test process/);
      assert.equal(app.get(ConnectionHealthRegistry).get('queue').state, 'up', 'nothing was changed');
    } finally {
      await app.close();
    }
  });

  it("degrades a connection that is down (reconnecting first), and says why one given up by policy 'stop' cannot come up", async () => {
    const testing = new ConnectionHealthTesting({ connections: ['db', 'stops'] });
    const app = await start(testing);
    try {
      const registry = app.get(ConnectionHealthRegistry);
      await testing.connection('db').down();
      await testing.connection('db').degrade('slow disk');
      assert.equal(registry.get('db').state, 'degraded');
      assert.equal(registry.get('db').snapshot().reason, 'slow disk');

      await testing.connection('stops').fail();
      assert.equal(registry.get('stops').state, 'failed');
      await assert.rejects(testing.connection('stops').up(), {
        message:
          'Connection "stops" cannot become up: it is failed and no heartbeat or reconnect attempt is scheduled ' +
          "(the failure policy 'stop' gave up; only handle.forceReconnect() revives it).",
      });
      registry.get('stops').forceReconnect();
      await testing.connection('stops').up();
      assert.equal(registry.get('stops').state, 'up');
    } finally {
      await app.close();
    }
  });
});

describe('nestjs-connection-health/testing and the management port', () => {
  it('puts the management port on a free port of its own, so test files run in parallel: two apps with the same port both start', async () => {
    const port = await freePort();
    @Module({
      imports: [
        ConnectionHealthModule.forRoot({
          connections: [{ name: 'db', kind: 'custom', ping: async () => undefined }],
          healthController: { port, host: '127.0.0.1' },
        }),
      ],
    })
    class PortModule {}
    const apps: INestApplication[] = [];
    try {
      const started: ConnectionHealthTesting[] = [];
      for (const _ of [1, 2]) {
        const testing = new ConnectionHealthTesting();
        const moduleRef = await testing.override(Test.createTestingModule({ imports: [PortModule] })).compile();
        const app = moduleRef.createNestApplication({ logger: false });
        apps.push(app);
        await app.listen(0, '127.0.0.1'); // as two test files at once: the second bound the same port before
        started.push(testing);
      }
      const bound: number[] = [];
      for (const testing of started) {
        const managementPort = testing.managementPort;
        assert.ok(managementPort !== undefined && managementPort !== port, `bound ${managementPort}, configured ${port}`);
        bound.push(managementPort);
        const response = await fetch(`http://127.0.0.1:${managementPort}/health/ready`, { headers: { connection: 'close' } });
        assert.equal(response.status, 200, await response.text());
        await testing.connection('db').down('network cut');
        assert.equal((await fetch(`http://127.0.0.1:${managementPort}/health/ready`, { headers: { connection: 'close' } })).status, 503);
      }
      assert.notEqual(bound[0], bound[1]);
    } finally {
      for (const app of apps) await app.close();
    }
  });
});
