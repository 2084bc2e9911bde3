import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { SchedulerRegistry } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { systemClock } from './core/clock.js';
import { SecretScrubber } from './core/secret-scrubber.js';
import { CONNECTION_HEALTH_CLOCK, CONNECTION_HEALTH_MONITOR_SEAM, CONNECTION_HEALTH_REGISTRATION } from './connection-health.constants.js';
import { checkModuleExtras } from './connection-health.options-check.js';
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
import { ConnectionHealthLogger } from './logging/connection-health.logger.js';
import { ConnectionHealthMetrics } from './metrics/connection-health.metrics.js';
import { ConnectionHealthOpenTelemetry } from './opentelemetry/connection-health.opentelemetry.js';
import { ConnectionHealthOrchestrator } from './orchestrator/connection-health.orchestrator.js';
import { realConnections } from './orchestrator/monitor.seam.js';
import { ConnectionHealthPublishers } from './publishers/connection-health.publishers.js';
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
    // nestjs-connection-health/testing overrides it to drive connections in an app's tests.
    { provide: CONNECTION_HEALTH_MONITOR_SEAM, useValue: realConnections },
    // One per registration: it learns the secrets of this module's connections, and every output passes it.
    { provide: SecretScrubber, useFactory: () => new SecretScrubber() },
    { provide: ConnectionHealthLogger, useFactory: (scrubber: SecretScrubber) => new ConnectionHealthLogger(scrubber), inject: [SecretScrubber] },
    ConnectionHealthRegistry,
    ConnectionHealthMetadataAccessor,
    ConnectionHealthExplorer,
    ConnectionHealthOrchestrator,
    ConnectionHealthProbes,
    DeadManSwitch,
    ConnectionHealthMetrics,
    ConnectionHealthOpenTelemetry,
    ConnectionHealthPublishers,
    ConnectionHealthIndicator,
  ],
  exports: [ConnectionHealthRegistry, ConnectionHealthIndicator, ConnectionHealthProbes],
})
export class ConnectionHealthModule extends ConfigurableConnectionHealthModule {
  static override forRoot(options: typeof CONNECTION_HEALTH_OPTIONS_TYPE = {}): DynamicModule {
    const registration = 'ConnectionHealthModule.forRoot()';
    checkModuleExtras(options, registration);
    // The options themselves are checked at bootstrap, as forRootAsync's are: here only the names are read.
    const connections: unknown[] = Array.isArray(options.connections) ? options.connections : [];
    const names = connections.flatMap((c) => (typeof (c as { name?: unknown })?.name === 'string' ? [(c as { name: string }).name] : []));
    return withConnectionHandles(super.forRoot(options), names, registration);
  }

  static override forRootAsync(options: typeof CONNECTION_HEALTH_ASYNC_OPTIONS_TYPE): DynamicModule {
    const registration = 'ConnectionHealthModule.forRootAsync()';
    checkModuleExtras(options, registration);
    return withConnectionHandles(super.forRootAsync(options), [], registration);
  }
}

/**
 * One provider per connection name that @InjectConnection asked for (decorators run before forRoot is
 * called, as the module's imports load the classes), plus the names forRoot knows. Each gives the
 * registry's handle, bound at module init. Also says how the module was registered, for messages.
 */
function withConnectionHandles(module: DynamicModule, names: readonly string[], registration: string): DynamicModule {
  const providers: Provider[] = [...new Set([...names, ...requestedConnectionNames()])].map((name) => ({
    provide: getConnectionToken(name),
    useFactory: (registry: ConnectionHealthRegistry) => registry.handleFor(name),
    inject: [ConnectionHealthRegistry],
  }));
  return {
    ...module,
    providers: [...(module.providers ?? []), ...providers, { provide: CONNECTION_HEALTH_REGISTRATION, useValue: registration }],
    exports: [...(module.exports ?? []), ...providers.map((provider) => (provider as { provide: string }).provide)],
  };
}
