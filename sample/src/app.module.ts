import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ConnectionHealthModule } from 'nestjs-connection-health';
import { DataSource } from 'typeorm';

// SQLite in memory by default, so the sample runs anywhere; DATABASE_URL=postgres://... monitors PostgreSQL.
const database = process.env.DATABASE_URL
  ? ({ type: 'postgres', url: process.env.DATABASE_URL } as const)
  : ({ type: 'sqljs' } as const);

@Module({
  imports: [
    ScheduleModule.forRoot(), // optional: lists the heartbeat timers beside the app's own jobs
    TypeOrmModule.forRoot(database),
    // Serves /health (Docker's HEALTHCHECK), /health/live, /health/ready and /health/startup.
    ConnectionHealthModule.forRoot({
      connections: [
        {
          name: 'database',
          kind: 'typeorm',
          dataSource: DataSource, // the token TypeOrmModule registers
          heartbeat: { intervalMs: Number(process.env.HEARTBEAT_INTERVAL_MS ?? 15_000), timeoutMs: 3_000 },
          reconnect: { maxAttempts: Infinity },
        },
      ],
      // In Kubernetes, DRAIN_DELAY_MS=5000 lets endpoints drop the pod before connections close.
      shutdown: { drainDelayMs: Number(process.env.DRAIN_DELAY_MS ?? 0), timeoutMs: 10_000 },
      // DEAD_MAN_MS: exit after the database has been down that long, so Docker restarts the container.
      ...(process.env.DEAD_MAN_MS ? { deadMan: { downForMs: Number(process.env.DEAD_MAN_MS), exitCode: 1 } } : {}),
    }),
  ],
})
export class AppModule {}
