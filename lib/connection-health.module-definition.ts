import { ConfigurableModuleBuilder, type DynamicModule, type Provider } from '@nestjs/common';
import { SecretScrubber } from './core/secret-scrubber.js';
import { HttpAdapterHost } from '@nestjs/core';
import { CONNECTION_HEALTH_CLOCK, CONNECTION_HEALTH_MONITOR_SEAM, CONNECTION_HEALTH_OPTIONS, CONNECTION_HEALTH_REGISTRATION } from './connection-health.constants.js';
import { createHealthController } from './health/connection-health.controller.js';
import { ConnectionHealthProbes } from './health/connection-health.probes.js';
import { ManagementPortServer } from './health/management-port.server.js';
import { ProbeAnswers } from './health/probe-answers.js';
import { createStatusPageController } from './health/status-page.controller.js';
import { ConnectionHealthRegistry } from './registry/connection-health.registry.js';
import { ConnectionHealthStatusPage } from './status-page/connection-health.status-page.js';
import { ConnectionHealthLogger } from './logging/connection-health.logger.js';
import type { ConnectionHealthModuleOptions } from './interfaces/connection-health-options.interface.js';
import type { HealthControllerOptions, HealthDetailLevel } from './interfaces/health-controller-options.interface.js';
import type { MonitorSeam } from './orchestrator/monitor.seam.js';
import type { Clock } from './core/clock.js';

interface Extras {
  /** Default true. */
  isGlobal: boolean;
  /**
   * The built-in /health, /health/live, /health/ready and /health/startup routes; `false` for apps that
   * compose their own Terminus controller with ConnectionHealthIndicator. Given here, not in the async
   * factory, because routes are fixed before any factory runs. Default { path: 'health', details: 'status' }.
   */
  healthController: HealthControllerOptions | false;
}

export const {
  ConfigurableModuleClass: ConfigurableConnectionHealthModule,
  OPTIONS_TYPE: CONNECTION_HEALTH_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: CONNECTION_HEALTH_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<ConnectionHealthModuleOptions>({ optionsInjectionToken: CONNECTION_HEALTH_OPTIONS })
  .setClassMethodName('forRoot')
  .setExtras<Extras>({ isGlobal: true, healthController: {} }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
    ...probeRoutes(definition, extras.healthController ?? {}),
  }))
  .build();

/** The built-in routes: a controller of the app, or a server of their own on the management port. */
function probeRoutes(definition: DynamicModule, options: HealthControllerOptions | false): Pick<DynamicModule, 'controllers' | 'providers'> {
  if (options === false) return { controllers: [] };
  const { port, host, path = 'health', details = 'status', awaitAppListen = true } = options;
  const page = options.ui === true ? [statusPageProvider(details)] : [];
  if (port === undefined) {
    const controllers = [createHealthController(options), ...(page.length ? [createStatusPageController(options)] : [])];
    return page.length ? { controllers, providers: [...(definition.providers ?? []), ...page] } : { controllers };
  }
  const server = {
    provide: ManagementPortServer,
    useFactory: (
      probes: ConnectionHealthProbes,
      scrubber: SecretScrubber,
      registration: string,
      logger: ConnectionHealthLogger,
      seam: MonitorSeam,
      http?: HttpAdapterHost,
      statusPage?: ConnectionHealthStatusPage,
    ) =>
      new ManagementPortServer(
        { port: seam.managementPort(port), host, path, awaitAppListen },
        new ProbeAnswers(probes, scrubber, details),
        registration,
        logger,
        (bound) => seam.managementPortBound(bound),
        http,
        statusPage,
      ),
    inject: [
      ConnectionHealthProbes,
      SecretScrubber,
      CONNECTION_HEALTH_REGISTRATION,
      ConnectionHealthLogger,
      CONNECTION_HEALTH_MONITOR_SEAM,
      { token: HttpAdapterHost, optional: true },
      { token: ConnectionHealthStatusPage, optional: true },
    ],
  };
  return { controllers: [], providers: [...(definition.providers ?? []), ...page, server] };
}

/** The status page (healthController.ui): provided only when on, so that off it subscribes and keeps nothing. */
function statusPageProvider(details: HealthDetailLevel): Provider {
  return {
    provide: ConnectionHealthStatusPage,
    useFactory: (registry: ConnectionHealthRegistry, probes: ConnectionHealthProbes, scrubber: SecretScrubber, clock: Clock) =>
      new ConnectionHealthStatusPage(registry, probes, scrubber, details, clock),
    inject: [ConnectionHealthRegistry, ConnectionHealthProbes, SecretScrubber, CONNECTION_HEALTH_CLOCK],
  };
}
