export const CONNECTION_HEALTH_OPTIONS = 'CONNECTION_HEALTH:MODULE_OPTIONS';
export const CONNECTION_HEALTH_CLOCK = 'CONNECTION_HEALTH:CLOCK';
/** @internal The seam nestjs-connection-health/testing overrides (see MonitorSeam). */
export const CONNECTION_HEALTH_MONITOR_SEAM = 'CONNECTION_HEALTH:MONITOR_SEAM';
/** How the app registered the module, e.g. 'ConnectionHealthModule.forRoot()': the place its messages name. */
export const CONNECTION_HEALTH_REGISTRATION = 'CONNECTION_HEALTH:REGISTRATION';
export const MONITORED_CONNECTIONS = 'CONNECTION_HEALTH:MONITORED_CONNECTIONS';
export const CONNECTION_HEARTBEAT = 'CONNECTION_HEALTH:HEARTBEAT';
export const CONNECTION_LIFECYCLE = 'CONNECTION_HEALTH:LIFECYCLE';
