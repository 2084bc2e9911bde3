import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer } from 'node:net';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type CanActivate,
  Controller,
  type CallHandler,
  type ExecutionContext,
  Get,
  Injectable,
  type NestInterceptor,
  Module,
  SetMetadata,
  UnauthorizedException,
  VersioningType,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR, NestFactory, Reflector } from '@nestjs/core';
import { map, type Observable } from 'rxjs';
import { ExpressAdapter } from '@nestjs/platform-express';
import { SkipThrottle, ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import { ConnectionHealthConfigError, ConnectionHealthModule } from '../lib/index.js';
import type { HealthControllerOptions } from '../lib/index.js';
import { messages } from '../lib/core/messages.js';
import { freePort } from './kit/process.util.js';
import { activeHandles, leakedHandles, TestApp, type TestAppOptions } from './kit/test-app.js';

const fast = { heartbeat: { intervalMs: 300, timeoutMs: 150, connectTimeoutMs: 300 }, reconnect: { initialDelayMs: 100, maxDelayMs: 200, maxAttempts: Infinity } };
const PROBES = ['/health', '/health/ready', '/health/live', '/health/startup'];

/** A `@Public()` marker as apps write it, read by their global auth guard. */
const IS_PUBLIC = 'test:is-public';
const Public = () => SetMetadata(IS_PUBLIC, true);

/** A global auth guard as apps have it: every route needs a token unless marked @Public(). */
@Injectable()
class TokenGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>();
    if (request.headers.authorization === 'Bearer letmein') return true;
    throw new UnauthorizedException();
  }
}

/** A global interceptor as apps have it: wraps every answer in `{ data }` unless the class says @RawBody(). */
const RAW_BODY = 'test:raw-body';
const RawBody = () => SetMetadata(RAW_BODY, true);
@Injectable()
class EnvelopeInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (this.reflector.get<boolean>(RAW_BODY, context.getClass())) return next.handle();
    return next.handle().pipe(map((data: unknown) => ({ data })));
  }
}

@Controller('things')
class ThingsController {
  @Get()
  list(): string[] {
    return ['a thing'];
  }
}

@Module({ controllers: [ThingsController] })
class ThingsModule {}

/** A ping the test turns off and on. */
function switchable() {
  const state = { up: true };
  const connection = { name: 'api', kind: 'custom', ping: async () => void (state.up || (await Promise.reject(new Error('down')))), ...fast } as const;
  return { state, connection };
}

/** An app with a global ThrottlerGuard (2 requests a minute) and a global auth guard, as many apps have. */
function guardedApp(healthController: HealthControllerOptions, extra: Partial<TestAppOptions> = {}) {
  const { state, connection } = switchable();
  const options: TestAppOptions = {
    health: { connections: [connection] },
    healthController,
    imports: [ThrottlerModule.forRoot([{ ttl: 60_000, limit: 2 }])],
    providers: [
      { provide: APP_GUARD, useClass: ThrottlerGuard },
      { provide: APP_GUARD, useClass: TokenGuard },
    ],
    ...extra,
  };
  return { state, options };
}

interface Answer {
  status: number;
  body: string;
  type: string | null;
  cache: string | null;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(url, { headers: { connection: 'close', ...headers } });
  return { status: response.status, body: await response.text(), type: response.headers.get('content-type'), cache: response.headers.get('cache-control') };
}

async function until(what: string, condition: () => Promise<boolean>, withinMs = 3_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${withinMs} ms`);
    await sleep(20);
  }
}

describe('the built-in probe routes in an app with versioning, guards and a throttler', () => {
  it('stay at /health under URI versioning with a default version (VERSION_NEUTRAL)', async () => {
    const { connection } = switchable();
    const app = await TestApp.start({
      health: { connections: [connection] },
      healthController: {},
      imports: [ThingsModule],
      configure: (nest) => nest.enableVersioning({ type: VersioningType.URI, defaultVersion: '1' }),
    });
    try {
      await app.waitForState('api', 'up', 2_000);
      assert.equal((await get(`${app.url}/v1/things`)).status, 200, "the app's own routes are versioned");
      for (const probe of PROBES) assert.equal((await get(`${app.url}${probe}`)).status, 200, probe);
    } finally {
      await app.close();
    }
  });

  it("stay at the root under a global prefix with the README's exclude, which must name the three sub-routes too", async () => {
    const { connection } = switchable();
    for (const [exclude, atRoot] of [
      [['health'], ['/health']],
      [['health', 'health/*path'], PROBES],
    ] as const) {
      const app = await TestApp.start({
        health: { connections: [connection] },
        healthController: {},
        imports: [ThingsModule],
        configure: (nest) => nest.setGlobalPrefix('api', { exclude: [...exclude] }),
      });
      try {
        await app.waitForState('api', 'up', 2_000);
        assert.equal((await get(`${app.url}/api/things`)).status, 200, "the app's own routes are prefixed");
        const seen = Object.fromEntries(await Promise.all(PROBES.map(async (probe) => [probe, (await get(`${app.url}${probe}`)).status] as const)));
        assert.deepEqual(seen, Object.fromEntries(PROBES.map((probe) => [probe, atRoot.includes(probe as never) ? 200 : 404])), JSON.stringify(exclude));
      } finally {
        await app.close();
      }
    }
  });

  it('answer 429 or 401 without an exemption: why healthController.decorators exists', async () => {
    const throttled = guardedApp({}, { providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }] });
    let app = await TestApp.start(throttled.options);
    try {
      await app.waitForState('api', 'up', 2_000);
      const codes = [];
      for (let i = 0; i < 4; i++) codes.push((await get(`${app.url}/health`)).status);
      assert.deepEqual(codes, [200, 200, 429, 429]);
    } finally {
      await app.close();
    }
    app = await TestApp.start(guardedApp({}, { imports: [], providers: [{ provide: APP_GUARD, useClass: TokenGuard }] }).options);
    try {
      await app.waitForState('api', 'up', 2_000);
      for (const probe of PROBES) assert.equal((await get(`${app.url}${probe}`)).status, 401, probe);
    } finally {
      await app.close();
    }
  });

  it('never answer 429 or 401 with decorators: [SkipThrottle(), Public()], while the app stays guarded', async () => {
    const { state, options } = guardedApp({ decorators: [SkipThrottle(), Public()] });
    const app = await TestApp.start({ ...options, imports: [...(options.imports ?? []), ThingsModule] });
    try {
      await app.waitForState('api', 'up', 2_000);
      for (let round = 0; round < 5; round++) {
        for (const probe of PROBES) assert.equal((await get(`${app.url}${probe}`)).status, 200, `${probe}, round ${round}`);
      }
      assert.equal((await get(`${app.url}/things`)).status, 401, 'other routes still need the token');
      const token = { authorization: 'Bearer letmein' };
      const codes = [];
      for (let i = 0; i < 2; i++) codes.push((await get(`${app.url}/things`, token)).status);
      // The throttler runs first: the refused request above was the first of the two a minute allows.
      assert.deepEqual(codes, [200, 429], 'other routes are still throttled');

      state.up = false;
      await app.waitForState('api', 'down', 2_000);
      const down = await Promise.all(PROBES.map(async (probe) => [probe, (await get(`${app.url}${probe}`)).status]));
      // Liveness and startup stay 200 through a dependency outage; readiness says 503.
      assert.deepEqual(Object.fromEntries(down), { '/health': 503, '/health/ready': 503, '/health/live': 200, '/health/startup': 200 });
    } finally {
      await app.close();
    }
  });

  it('keep their bodies under a global interceptor that reads a marker given in decorators', async () => {
    for (const decorators of [undefined, [RawBody()]]) {
      const { connection } = switchable();
      const app = await TestApp.start({
        health: { connections: [connection] },
        healthController: { decorators },
        imports: [ThingsModule],
        providers: [{ provide: APP_INTERCEPTOR, useClass: EnvelopeInterceptor }],
      });
      try {
        await app.waitForState('api', 'up', 2_000);
        assert.deepEqual(JSON.parse((await get(`${app.url}/things`)).body), { data: ['a thing'] }, "the app's routes are wrapped");
        const probe = { status: 'ok', info: { api: { status: 'up' } }, error: {}, details: { api: { status: 'up' } } };
        const body = JSON.parse((await get(`${app.url}/health`)).body);
        assert.deepEqual(body, decorators ? probe : { data: JSON.stringify(probe) });
      } finally {
        await app.close();
      }
    }
  });
});

describe('the management port (healthController.port)', () => {
  it('answers with the codes, bodies and headers of the built-in routes, and the app itself serves no probe', async () => {
    for (const details of ['status', 'none', undefined] as const) {
      const builtIn = switchable();
      const separate = switchable();
      const port = await freePort();
      const routes = await TestApp.start({ health: { connections: [builtIn.connection] }, healthController: { details } });
      const managed = await TestApp.start({ health: { connections: [separate.connection] }, healthController: { details, port, host: '127.0.0.1' } });
      try {
        for (const up of [true, false]) {
          builtIn.state.up = separate.state.up = up;
          await routes.waitForState('api', up ? 'up' : 'down', 2_000);
          await managed.waitForState('api', up ? 'up' : 'down', 2_000);
          for (const probe of PROBES) {
            const expected = await get(`${routes.url}${probe}`);
            assert.deepEqual(await get(`http://127.0.0.1:${port}${probe}`), expected, `${probe}, details ${details}, up ${up}`);
            assert.equal((await get(`${managed.url}${probe}`)).status, 404, 'the app serves no probe route itself');
          }
        }
        assert.equal((await get(`http://127.0.0.1:${port}/health/?x=1`)).status, 503, 'a trailing slash and a query string are ignored, as on the routes');
        assert.equal((await get(`http://127.0.0.1:${port}/other`)).status, 404);
        const head = await fetch(`http://127.0.0.1:${port}/health/live`, { method: 'HEAD', headers: { connection: 'close' } });
        assert.equal(head.status, 200);
        assert.equal((await fetch(`http://127.0.0.1:${port}/health`, { method: 'POST', headers: { connection: 'close' } })).status, 404);
      } finally {
        await routes.close();
        await managed.close();
      }
    }
  });

  it('serves the same path as the routes would, however its slashes are written', async () => {
    for (const path of ['internal/health', '/internal/health/']) {
      const port = await freePort();
      const routes = await TestApp.start({ healthController: { path } });
      const managed = await TestApp.start({ healthController: { path, port, host: '127.0.0.1' } });
      try {
        for (const probe of ['', '/ready', '/live', '/startup']) {
          const expected = await get(`${routes.url}/internal/health${probe}`);
          assert.equal(expected.status, 200, `the routes serve /internal/health${probe}`);
          assert.deepEqual(await get(`http://127.0.0.1:${port}/internal/health${probe}`), expected, `${path}: /internal/health${probe}`);
        }
        assert.equal((await get(`http://127.0.0.1:${port}/health`)).status, 404);
      } finally {
        await routes.close();
        await managed.close();
      }
    }
  });

  it("is out of reach of the app's global guards, throttler and versioning", async () => {
    const port = await freePort();
    const { options } = guardedApp({ port, host: '127.0.0.1' });
    const app = await TestApp.start({
      ...options,
      imports: [...(options.imports ?? []), ThingsModule],
      configure: (nest) => nest.enableVersioning({ type: VersioningType.URI, defaultVersion: '1' }),
    });
    try {
      await app.waitForState('api', 'up', 2_000);
      for (let round = 0; round < 5; round++) {
        for (const probe of PROBES) assert.equal((await get(`http://127.0.0.1:${port}${probe}`)).status, 200, `${probe}, round ${round}`);
      }
      assert.equal((await get(`${app.url}/v1/things`)).status, 401, 'the app guards its own routes');
    } finally {
      await app.close();
    }
  });

  it('answers 503 while draining, then closes with app.close(), a held keep-alive connection too, leaving no handle', async () => {
    await sleep(50);
    const baseline = activeHandles();
    const port = await freePort();
    const { connection } = switchable();
    const app = await TestApp.start({ health: { connections: [connection], shutdown: { drainDelayMs: 1_000 } }, healthController: { port, host: '127.0.0.1' } });
    await app.waitForState('api', 'up', 2_000);
    // A prober that keeps its connection open, as Kubernetes' kubelet and load balancers may.
    const held = connect(port, '127.0.0.1');
    await once(held, 'connect');
    held.write('GET /health HTTP/1.1\r\nhost: x\r\nconnection: keep-alive\r\n\r\n');
    const [first] = (await once(held, 'data')) as [Buffer];
    assert.match(first.toString(), /^HTTP\/1\.1 200 /);
    const heldClosed = once(held, 'close');

    const closing = app.close();
    await until('readiness turns 503', async () => (await get(`http://127.0.0.1:${port}/health/ready`)).status === 503);
    assert.deepEqual(JSON.parse((await get(`http://127.0.0.1:${port}/health`)).body), {
      status: 'shutting_down',
      info: { api: { status: 'up' } },
      error: { shutdown: { status: 'down' } },
      details: { api: { status: 'up' }, shutdown: { status: 'down' } },
    });
    assert.equal((await get(`http://127.0.0.1:${port}/health/live`)).status, 200, 'liveness holds during the drain');
    await closing;
    await heldClosed;
    await assert.rejects(get(`http://127.0.0.1:${port}/health`), 'nothing listens after app.close()');
    await sleep(50);
    assert.deepEqual(leakedHandles(baseline), {});
  });

  it('refuses a port in use at bootstrap, naming it, and leaves nothing behind', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as { port: number };
    await sleep(50);
    const baseline = activeHandles();
    try {
      let pings = 0;
      const connection = { name: 'api', kind: 'custom', ping: async () => void (pings += 1), ...fast } as const;
      const error = await TestApp.start({ health: { connections: [connection] }, healthController: { port, host: '127.0.0.1' } }).then(
        () => assert.fail('the app bootstrapped on a port in use'),
        (error: unknown) => error,
      );
      assert.ok(error instanceof ConnectionHealthConfigError, String(error));
      assert.equal(
        error.message,
        `ConnectionHealthModule.forRoot(): the management port (healthController.port) cannot listen on 127.0.0.1:${port}: the port is in use (EADDRINUSE). ` +
          'Choose a port that no other server (the app itself included) uses, or stop the process that holds it.',
      );
      assert.deepEqual({ option: error.option, value: error.value }, { option: 'healthController.port', value: port });
      // Bound at module init: no connection had started, so an app that swallows the error runs nothing.
      assert.equal(pings, 0, 'no ping before the bootstrap failed');
      await sleep(50);
      assert.deepEqual(leakedHandles(baseline), {});
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it("answers readiness 503 until the app's own server listens, while its start-up hooks run; startup and liveness 200", async () => {
    const port = await freePort();
    @Injectable()
    class SlowWarmUp implements OnApplicationBootstrap {
      async onApplicationBootstrap(): Promise<void> {
        await sleep(1_500); // a cache warm-up, say: the app's port is not open yet
      }
    }
    const { connection } = switchable();
    const starting = TestApp.start({ health: { connections: [connection] }, healthController: { port, host: '127.0.0.1' }, providers: [SlowWarmUp] });
    const seen = new Set<string>();
    let app: TestApp | undefined;
    void starting.then((started) => (app = started));
    while (!app) {
      const answers = await Promise.all(['/health/ready', '/health/startup', '/health/live'].map((route) => get(`http://127.0.0.1:${port}${route}`).catch(() => undefined)));
      if (!app && answers[0]) seen.add(`ready ${answers[0].status}, startup ${answers[1]?.status}, live ${answers[2]?.status}`);
      await sleep(50);
    }
    try {
      // Startup is "booted and monitors run", as on the app's routes: gating it on listen would get a pod
      // that never listens through Nest restarted in a loop.
      assert.ok(seen.has('ready 503, startup 200, live 200'), [...seen].join('; '));
      assert.ok(![...seen].some((answer) => answer.startsWith('ready 200')), `ready before the app listened: ${[...seen].join('; ')}`);
      await until('ready once the app listens', async () => (await get(`http://127.0.0.1:${port}/health/ready`)).status === 200);
    } finally {
      await app.close();
    }
  });

  it("serves an app that listens through a server of its own (Nest's multiple-servers pattern): startup 200; readiness 200 with awaitAppListen: false, held by default, saying why", async () => {
    for (const awaitAppListen of [undefined, false]) {
      const port = await freePort();
      const { connection } = switchable();
      @Module({
        imports: [ThingsModule, ConnectionHealthModule.forRoot({ connections: [connection], healthController: { port, host: '127.0.0.1', details: 'full', ...(awaitAppListen === undefined ? {} : { awaitAppListen }) } })],
      })
      class OwnServerModule {}
      const adapter = new ExpressAdapter(); // makes express(), as `new ExpressAdapter(express())` in Nest's docs
      const app = await NestFactory.create(OwnServerModule, adapter, { logger: false });
      await app.init();
      // As in Nest's docs: the app serves through servers of its own; Nest's own server never listens.
      const own = createHttpServer(adapter.getInstance()).listen(0, '127.0.0.1');
      await once(own, 'listening');
      try {
        const { port: ownPort } = own.address() as { port: number };
        assert.equal((await get(`http://127.0.0.1:${ownPort}/things`)).status, 200, 'the app serves through its own server');
        await until('the connection is up', async () => (await get(`http://127.0.0.1:${port}/health/live`)).status === 200);
        assert.equal((await get(`http://127.0.0.1:${port}/health/startup`)).status, 200, `startup, awaitAppListen ${awaitAppListen}`);
        if (awaitAppListen === false) {
          await until('ready', async () => (await get(`http://127.0.0.1:${port}/health/ready`)).status === 200);
          continue;
        }
        await sleep(500);
        const held = await get(`http://127.0.0.1:${port}/health/ready`);
        assert.equal(held.status, 503, 'the default waits for Nest\'s own server, which never listens here');
        assert.deepEqual(JSON.parse(held.body), {
          status: 'error',
          info: {},
          error: { app: { status: 'down', reason: messages.appNotListening() } },
          details: { app: { status: 'down', reason: messages.appNotListening() } },
        });
        assert.match(held.body, /awaitAppListen: false/);
      } finally {
        await new Promise((resolve) => own.close(resolve));
        await app.close();
      }
    }
  });

  it('answers readiness 200 in an app that only calls init() (a hybrid app serving through its microservices)', async () => {
    const port = await freePort();
    const { connection } = switchable();
    @Module({ imports: [ConnectionHealthModule.forRoot({ connections: [connection], healthController: { port, host: '127.0.0.1', awaitAppListen: false } })] })
    class HybridModule {}
    const app = await NestFactory.create(HybridModule, { logger: false });
    await app.init();
    try {
      await until('ready', async () => (await get(`http://127.0.0.1:${port}/health/ready`)).status === 200);
      assert.equal((await get(`http://127.0.0.1:${port}/health/startup`)).status, 200);
    } finally {
      await app.close();
    }
  });

  it('serves an app with no HTTP server of its own (NestFactory.createApplicationContext)', async () => {
    const port = await freePort();
    const { state, connection } = switchable();
    @Module({ imports: [ConnectionHealthModule.forRoot({ connections: [connection], healthController: { port, host: '127.0.0.1' } })] })
    class WorkerModule {}
    const worker = await NestFactory.createApplicationContext(WorkerModule, { logger: false });
    try {
      await until('the connection is up', async () => (await get(`http://127.0.0.1:${port}/health`)).status === 200);
      state.up = false;
      await until('readiness turns 503', async () => (await get(`http://127.0.0.1:${port}/health`)).status === 503);
    } finally {
      await worker.close();
    }
    await assert.rejects(get(`http://127.0.0.1:${port}/health`));
  });
});
