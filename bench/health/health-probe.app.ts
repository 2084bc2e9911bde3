/**
 * The app under load in the /health benchmark, run as its own process: three routes side by side.
 * - GET /constant: a constant JSON answer, the ceiling of this stack (Nest on Express);
 * - GET /health: the package's built-in probe, reading the monitor's snapshot of a PostgreSQL connection;
 * - GET /stock: the stock Terminus TypeOrmHealthIndicator.pingCheck, a SELECT 1 per request.
 * Both data sources point at the same database (through the driver's chaos proxy), under different roles
 * so the server counts each side's queries apart. Usage: node health-probe.app.js <host> <port>
 */
import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { ConnectionHealthModule, ConnectionHealthRegistry } from '../../lib/index.js';
import { tellParent, whenParentStops } from '../kit/child.process.js';
import { BENCH_DATABASE, MONITOR_ROLE, STOCK_ROLE } from '../kit/bench-postgres.js';
import { HEALTH_APP_HEARTBEAT, HEALTH_APP_RECONNECT } from './health-probe.settings.js';

export interface HealthAppReady {
  url: string;
}

/** What GET /bench/stats answers: the driver reads it around each load run. */
export interface HealthAppStats {
  state: string;
  /** Successful heartbeats since the app started. */
  beats: number;
  /** The stock data source's pg.Pool: queries waiting for a client pile up here when the database hangs. */
  stockPool: { total: number; idle: number; waiting: number };
}

const [host = '127.0.0.1', port = '5432'] = process.argv.slice(2);
const target = { type: 'postgres' as const, host, port: Number(port), database: BENCH_DATABASE, logging: false };
const monitored = new DataSource({ ...target, username: MONITOR_ROLE });

interface PgPoolCounts {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

@Controller()
class BenchController {
  private beats = 0;

  constructor(
    private readonly health: HealthCheckService,
    private readonly typeOrm: TypeOrmHealthIndicator,
    private readonly registry: ConnectionHealthRegistry,
    @InjectDataSource() private readonly stock: DataSource,
  ) {}

  onApplicationBootstrap(): void {
    this.registry.get('database').events$.subscribe((event) => {
      if (event.type === 'heartbeat' && event.ok) this.beats += 1;
    });
  }

  @Get('constant')
  constant() {
    return { status: 'ok' };
  }

  @Get('stock')
  @HealthCheck()
  stockCheck() {
    return this.health.check([() => this.typeOrm.pingCheck('database')]);
  }

  @Get('bench/stats')
  stats(): HealthAppStats {
    const pool = (this.stock.driver as unknown as { master?: PgPoolCounts }).master;
    return {
      state: this.registry.get('database').state,
      beats: this.beats,
      stockPool: { total: pool?.totalCount ?? 0, idle: pool?.idleCount ?? 0, waiting: pool?.waitingCount ?? 0 },
    };
  }
}

@Module({
  imports: [
    TerminusModule,
    TypeOrmModule.forRoot({ ...target, username: STOCK_ROLE }),
    ConnectionHealthModule.forRoot({
      connections: [
        {
          name: 'database',
          kind: 'typeorm',
          dataSource: monitored,
          heartbeat: HEALTH_APP_HEARTBEAT,
          reconnect: HEALTH_APP_RECONNECT,
        },
      ],
    }),
  ],
  controllers: [BenchController],
})
class HealthBenchModule {}

try {
  const app = await NestFactory.create(HealthBenchModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const { port: listening } = app.getHttpServer().address() as AddressInfo;
  // A database that hangs keeps the stock pool's queries (and so app.close()) waiting forever: the driver
  // SIGKILLs this process after a grace period, which is fine for a throwaway bench app.
  whenParentStops(() => app.close());
  await tellParent<HealthAppReady>({ type: 'ready', value: { url: `http://127.0.0.1:${listening}` } });
} catch (error) {
  await tellParent({ type: 'error', message: error instanceof Error ? error.stack ?? error.message : String(error) });
  process.exit(1);
}
