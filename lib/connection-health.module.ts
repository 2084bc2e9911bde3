import { Module } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { systemClock } from './core/clock.js';
import { CONNECTION_HEALTH_CLOCK } from './connection-health.constants.js';
import { ConfigurableConnectionHealthModule } from './connection-health.module-definition.js';
import { ConnectionHealthIndicator } from './health/connection-health.health.js';
import { ConnectionHealthOrchestrator } from './orchestrator/connection-health.orchestrator.js';
import { ConnectionHealthRegistry } from './registry/connection-health.registry.js';
import { SchedulerRegistryClock } from './schedule/scheduler-registry.clock.js';

/**
 * Heartbeats, reconnects and reports the app's long-lived connections.
 * `ConnectionHealthModule.forRoot({ connections: [...] })` or `forRootAsync({ useFactory, inject })`.
 */
@Module({
  imports: [TerminusModule],
  providers: [
    {
      // Heartbeat timers go where the app's other jobs are when it uses @nestjs/schedule.
      provide: CONNECTION_HEALTH_CLOCK,
      useFactory: (registry?: SchedulerRegistry) => (registry ? new SchedulerRegistryClock(registry) : systemClock),
      inject: [{ token: SchedulerRegistry, optional: true }],
    },
    ConnectionHealthRegistry,
    ConnectionHealthOrchestrator,
    ConnectionHealthIndicator,
  ],
  exports: [ConnectionHealthRegistry, ConnectionHealthIndicator],
})
export class ConnectionHealthModule extends ConfigurableConnectionHealthModule {}
