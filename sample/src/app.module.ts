import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ConnectionHealthModule } from 'nestjs-connection-health';
import { DataSource } from 'typeorm';
import { HealthController } from './health.controller.js';

// SQLite in memory by default, so the sample runs anywhere; DATABASE_URL=postgres://... monitors PostgreSQL.
const database = process.env.DATABASE_URL
  ? ({ type: 'postgres', url: process.env.DATABASE_URL } as const)
  : ({ type: 'sqljs' } as const);

@Module({
  imports: [
    ScheduleModule.forRoot(), // optional: lists the heartbeat timers beside the app's own jobs
    TypeOrmModule.forRoot(database),
    TerminusModule,
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
    }),
  ],
  controllers: [HealthController],
})
export class AppModule {}
