import type { ConnectionAdapter } from '../core/connection-adapter.interface.js';
import type { ConnectionMonitor } from '../core/connection-monitor.js';

/**
 * @internal Where nestjs-connection-health/testing plugs in: it may hand a connection's monitor a stand-in
 * adapter (so a test drives what the far end does while the package's real state machine, events, handlers,
 * probes and metrics run) and learns each monitor once built; and it moves the management port to a free
 * port, as test files run in parallel, each with an app on the configured one. An app never provides it;
 * the module's default leaves every connection and the port as configured.
 */
export interface MonitorSeam {
  /** The adapter the monitor of `name` drives: `real`, or a stand-in. */
  adapterFor(name: string, real: ConnectionAdapter): ConnectionAdapter;
  /** Told of each monitor once it is built and registered, before it starts. */
  monitorBuilt(monitor: ConnectionMonitor): void;
  /** The port the management server listens on: `configured`, or 0 (any free port). */
  managementPort(configured: number): number;
  /** Told of the port the management server bound, once it listens. */
  managementPortBound(port: number): void;
}

/** The module's default: every connection as configured. */
export const realConnections: MonitorSeam = {
  adapterFor: (_name, real) => real,
  monitorBuilt: () => undefined,
  managementPort: (configured) => configured,
  managementPortBound: () => undefined,
};
