import type { ConnectionAdapter } from '../core/connection-adapter.interface.js';
import type { ConnectionMonitor } from '../core/connection-monitor.js';

/**
 * @internal Where nestjs-connection-health/testing plugs in: it may hand a connection's monitor a stand-in
 * adapter (so a test drives what the far end does while the package's real state machine, events, handlers,
 * probes and metrics run) and learns each monitor once built. An app never provides it; the module's
 * default leaves every connection as configured.
 */
export interface MonitorSeam {
  /** The adapter the monitor of `name` drives: `real`, or a stand-in. */
  adapterFor(name: string, real: ConnectionAdapter): ConnectionAdapter;
  /** Told of each monitor once it is built and registered, before it starts. */
  monitorBuilt(monitor: ConnectionMonitor): void;
}

/** The module's default: every connection as configured. */
export const realConnections: MonitorSeam = {
  adapterFor: (_name, real) => real,
  monitorBuilt: () => undefined,
};
