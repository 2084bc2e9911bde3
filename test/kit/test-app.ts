import 'reflect-metadata';
import { Controller, Get, type INestApplication, type LoggerService, Module, type ModuleMetadata } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { firstValueFrom, filter, timeout } from 'rxjs';
import type { AddressInfo } from 'node:net';
import { ConnectionHealthIndicator, ConnectionHealthModule, ConnectionHealthRegistry } from '../../lib/index.js';
import type { ConnectionSnapshot } from '../../lib/index.js';
import type { ConnectionHealthModuleOptions } from '../../lib/interfaces/connection-health-options.interface.js';
import type { HealthControllerOptions } from '../../lib/interfaces/health-controller-options.interface.js';

export interface TestAppOptions {
  /** Given to ConnectionHealthModule.forRoot(), or returned by the forRootAsync factory when `async` is set. */
  health?: ConnectionHealthModuleOptions;
  /** Register forRootAsync({ useFactory }) instead of forRoot(). */
  async?: boolean;
  /**
   * Extras of forRoot: the built-in controller's options, or false. Default `{ details: 'full' }`, since
   * tests read reasons and states from the bodies (the package's own default is 'status').
   */
  healthController?: HealthControllerOptions | false;
  /** Import ScheduleModule.forRoot(), so heartbeat timers land in its SchedulerRegistry. */
  schedule?: boolean;
  /** Extra imports and providers, e.g. a DataSource provider. */
  imports?: ModuleMetadata['imports'];
  providers?: ModuleMetadata['providers'];
  /** Called before the app listens, e.g. to enable versioning. */
  configure?: (app: INestApplication) => void;
  /** Where Nest logs go; silent unless CH_TEST_LOGS is set. */
  logger?: LoggerService;
}

export interface HttpAnswer {
  status: number;
  body: { status: string; info?: object; error?: object; details: Record<string, Record<string, unknown>> };
}

const FULL_DETAILS: HealthControllerOptions = { details: 'full' };

/** A user's own Terminus controller, composed with ConnectionHealthIndicator, beside the built-in /health. */
@Controller('terminus')
class TerminusHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly connections: ConnectionHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.connections.isHealthy(undefined, { details: 'full' })]);
  }
}

/** A real Nest HTTP app with the module (built-in /health routes), a Terminus route, and helpers to watch connections. */
export class TestApp {
  private constructor(
    readonly app: INestApplication,
    readonly url: string,
  ) {}

  static async start(options: TestAppOptions): Promise<TestApp> {
    const healthModule = options.async
      ? ConnectionHealthModule.forRootAsync({ useFactory: async () => options.health ?? {}, healthController: options.healthController ?? FULL_DETAILS })
      : ConnectionHealthModule.forRoot({ ...options.health, healthController: options.healthController ?? FULL_DETAILS });
    @Module({
      imports: [
        ...(options.schedule ? [ScheduleModule.forRoot()] : []),
        TerminusModule,
        ...(options.imports ?? []),
        healthModule,
      ],
      providers: options.providers ?? [],
      controllers: [TerminusHealthController],
    })
    class TestModule {}
    const app = await NestFactory.create(TestModule, { logger: options.logger ?? (process.env.CH_TEST_LOGS ? undefined : false) });
    try {
      options.configure?.(app);
      await app.listen(0, '127.0.0.1');
    } catch (error) {
      await app.close();
      throw error;
    }
    const { port } = app.getHttpServer().address() as AddressInfo;
    return new TestApp(app, `http://127.0.0.1:${port}`);
  }

  get registry(): ConnectionHealthRegistry {
    return this.app.get(ConnectionHealthRegistry);
  }

  snapshot(name: string): ConnectionSnapshot {
    return this.registry.get(name).snapshot();
  }

  /** GET a probe route: the built-in /health by default, /terminus for the indicator in a user's controller. */
  async health(path = '/health'): Promise<HttpAnswer> {
    const response = await fetch(`${this.url}${path}`, { headers: { connection: 'close' } });
    return { status: response.status, body: (await response.json()) as HttpAnswer['body'] };
  }

  /** Resolves with the first snapshot of `name` that satisfies `predicate` (now or later), or rejects after `withinMs`. */
  async waitFor(name: string, predicate: (s: ConnectionSnapshot) => boolean, withinMs: number): Promise<ConnectionSnapshot> {
    const handle = this.registry.get(name);
    if (predicate(handle.snapshot())) return handle.snapshot();
    const event = await firstValueFrom(
      handle.events$.pipe(
        filter((e) => predicate(e.snapshot)),
        timeout({ first: withinMs, with: () => Promise.reject(new Error(`${name}: condition not met within ${withinMs} ms; last ${JSON.stringify(handle.snapshot())}`)) }),
      ),
    );
    return event.snapshot;
  }

  /** Resolves when `name` reaches `state`, with the time it took from `since`. */
  async waitForState(name: string, state: string, withinMs: number, since = performance.timeOrigin + performance.now()) {
    const snapshot = await this.waitFor(name, (s) => s.state === state, withinMs);
    return { snapshot, elapsedMs: Math.round(snapshot.since - since) };
  }

  close(): Promise<void> {
    return this.app.close();
  }
}

/** Handles (timers, sockets, servers, child processes) alive in this process, by type. */
export function activeHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/**
 * The handle types that are more numerous now than in `baseline`: after app.close() this must be empty.
 * Fewer is fine: the baseline may have caught a kit's child process on its way out.
 */
export function leakedHandles(baseline: Record<string, number>): Record<string, number> {
  const leaked: Record<string, number> = {};
  for (const [type, count] of Object.entries(activeHandles())) {
    if (count > (baseline[type] ?? 0)) leaked[type] = count - (baseline[type] ?? 0);
  }
  return leaked;
}
