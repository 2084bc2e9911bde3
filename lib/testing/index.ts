/**
 * nestjs-connection-health/testing: drive the monitored connections of an app in its tests (down, up,
 * degraded, failed) on fake time, while the package's real state machine, events, handlers and probes run.
 */
export {
  ConnectionHealthTesting,
  type ConnectionHealthTestingOptions,
  type ProviderOverridable,
} from './connection-health.testing.js';
export { ConnectionControl } from './connection.control.js';
export { FakeClock } from './fake-clock.js';
