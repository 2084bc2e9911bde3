import { ConfigurableModuleBuilder } from '@nestjs/common';
import { CONNECTION_HEALTH_OPTIONS } from './connection-health.constants.js';
import { createHealthController } from './health/connection-health.controller.js';
import type { ConnectionHealthModuleOptions } from './interfaces/connection-health-options.interface.js';
import type { HealthControllerOptions } from './interfaces/health-controller-options.interface.js';

interface Extras {
  /** Default true. */
  isGlobal: boolean;
  /**
   * The built-in /health, /health/live, /health/ready and /health/startup routes; `false` for apps that
   * compose their own Terminus controller with ConnectionHealthIndicator. Given here, not in the async
   * factory, because routes are fixed before any factory runs. Default { path: 'health', details: 'full' }.
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
    controllers: extras.healthController === false ? [] : [createHealthController(extras.healthController ?? {})],
  }))
  .build();
