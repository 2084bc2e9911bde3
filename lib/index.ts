export { ConnectionHealthModule } from './connection-health.module.js';
export type { ConnectionHealthModuleOptions } from './interfaces/connection-health-options.interface.js';
export type {
  ConnectionDefinition,
  CustomConnectionDefinition,
  TcpConnectionDefinition,
  TypeOrmConnectionDefinition,
} from './interfaces/connection-definition.interface.js';
export { ConnectionHealthRegistry } from './registry/connection-health.registry.js';
export { ConnectionHandle } from './registry/connection-handle.js';
export { ConnectionHealthIndicator } from './health/connection-health.health.js';

export type { ConnectionState } from './core/connection-state.js';
export type { ConnectionSnapshot, HealthStatus } from './core/connection-snapshot.js';
export type { ConnectionEvent, HeartbeatEvent, StateChangeEvent } from './core/connection-event.js';
export type {
  FailureOptions,
  FailurePolicy,
  HeartbeatOptions,
  MonitorOptionsInput,
  ReconnectOptions,
} from './core/monitor-options.js';
export type { CustomConnection } from './adapters/custom/custom.adapter.js';
export { ConnectionHealthConfigError } from './core/errors/connection-health-config.error.js';
export { HeartbeatTimeoutError } from './core/errors/heartbeat-timeout.error.js';
export { MissingDependencyError } from './core/errors/missing-dependency.error.js';
export { UnknownConnectionError } from './core/errors/unknown-connection.error.js';

export { MonitorConnection, type MonitorConnectionOptions } from './decorators/monitor-connection.decorator.js';
export { ConnectionHeartbeat, type ConnectionHeartbeatOptions } from './decorators/connection-heartbeat.decorator.js';
export {
  OnConnected,
  OnConnectionFailed,
  OnConnectionLost,
  OnConnectionRecovered,
} from './decorators/connection-lifecycle.decorator.js';
export { getConnectionToken, InjectConnection } from './decorators/inject-connection.decorator.js';
export type { ConnectionLifecycle } from './core/connection-lifecycle.js';
