import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { SchedulerRegistry } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { systemClock } from './core/clock.js';
import { CONNECTION_HEALTH_CLOCK } from './connection-health.constants.js';
import {
  CONNECTION_HEALTH_ASYNC_OPTIONS_TYPE,
  CONNECTION_HEALTH_OPTIONS_TYPE,
  ConfigurableConnectionHealthModule,
} from './connection-health.module-definition.js';
import { getConnectionToken, requestedConnectionNames } from './decorators/inject-connection.decorator.js';
import { ConnectionHealthMetadataAccessor } from './explorer/connection-health-metadata.accessor.js';
import { ConnectionHealthExplorer } from './explorer/connection-health.explorer.js';
import { DeadManSwitch } from './dead-man/dead-man.switch.js';
import { ConnectionHealthIndicator } from './health/connection-health.health.js';
import { ConnectionHealthProbes } from './health/connection-health.probes.js';
import { ConnectionHealthMetrics } from './metrics/connection-health.metrics.js';
import { ConnectionHealthOrchestrator } from './orchestrator/connection-health.orchestrator.js';
import { ConnectionHealthRegistry } from './registry/connection-health.registry.js';
import { SchedulerRegistryClock } from './schedule/scheduler-registry.clock.js';

/**
 * Heartbeats, reconnects and reports the app's long-lived connections.
 * `ConnectionHealthModule.forRoot({ connections: [...] })` or `forRootAsync({ useFactory, inject })`;
 * decorated providers (@MonitorConnection, @ConnectionHeartbeat) add theirs.
 */
@Module({
  imports: [TerminusModule, DiscoveryModule],
  providers: [
    {
      // Heartbeat timers go where the app's other jobs are when it uses @nestjs/schedule.
      provide: CONNECTION_HEALTH_CLOCK,
      useFactory: (registry?: SchedulerRegistry) => (registry ? new SchedulerRegistryClock(registry) : systemClock),
      inject: [{ token: SchedulerRegistry, optional: true }],
    },
    ConnectionHealthRegistry,
    ConnectionHealthMetadataAccessor,
    ConnectionHealthExplorer,
    ConnectionHealthOrchestrator,
    ConnectionHealthProbes,
    DeadManSwitch,
    ConnectionHealthMetrics,
    ConnectionHealthIndicator,
  ],
  exports: [ConnectionHealthRegistry, ConnectionHealthIndicator, ConnectionHealthProbes],
})
export class ConnectionHealthModule extends ConfigurableConnectionHealthModule {
  static override forRoot(options: typeof CONNECTION_HEALTH_OPTIONS_TYPE = {}): DynamicModule {
    return withConnectionHandles(super.forRoot(options), options.connections?.map((c) => c.name) ?? []);
  }

  static override forRootAsync(options: typeof CONNECTION_HEALTH_ASYNC_OPTIONS_TYPE): DynamicModule {
    return withConnectionHandles(super.forRootAsync(options), []);
  }
}

/**
 * One provider per connection name that @InjectConnection asked for (decorators run before forRoot is
 * called, as the module's imports load the classes), plus the names forRoot knows. Each gives the
 * registry's handle, bound at module init.
 */
function withConnectionHandles(module: DynamicModule, names: readonly string[]): DynamicModule {
  const providers: Provider[] = [...new Set([...names, ...requestedConnectionNames()])].map((name) => ({
    provide: getConnectionToken(name),
    useFactory: (registry: ConnectionHealthRegistry) => registry.handleFor(name),
    inject: [ConnectionHealthRegistry],
  }));
  return {
    ...module,
    providers: [...(module.providers ?? []), ...providers],
    exports: [...(module.exports ?? []), ...providers.map((provider) => (provider as { provide: string }).provide)],
  };
}
