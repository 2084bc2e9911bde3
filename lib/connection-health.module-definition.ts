import { ConfigurableModuleBuilder } from '@nestjs/common';
import { CONNECTION_HEALTH_OPTIONS } from './connection-health.constants.js';
import type { ConnectionHealthModuleOptions } from './interfaces/connection-health-options.interface.js';

export const {
  ConfigurableModuleClass: ConfigurableConnectionHealthModule,
  OPTIONS_TYPE: CONNECTION_HEALTH_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: CONNECTION_HEALTH_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<ConnectionHealthModuleOptions>({ optionsInjectionToken: CONNECTION_HEALTH_OPTIONS })
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
