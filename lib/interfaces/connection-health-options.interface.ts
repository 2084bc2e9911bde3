import type { MonitorOptionsInput } from '../core/monitor-options.js';
import type { ConnectionHealthPublisher } from '../publishers/connection-health-publisher.interface.js';
import type { ConnectionDefinition } from './connection-definition.interface.js';
import type { MetricsOptions } from './metrics-options.interface.js';
import type { OpenTelemetryOptions } from './opentelemetry-options.interface.js';

export interface ShutdownOptions {
  /**
   * On shutdown, readiness answers 503 at once, then the app keeps serving this long so load balancers
   * and Kubernetes endpoints notice before connections close. Default 0. Keep drainDelayMs + timeoutMs
   * below Kubernetes' terminationGracePeriodSeconds (30 s by default) and Docker's stop timeout (10 s).
   */
  drainDelayMs?: number;
  /** Deadline of closing every connection politely, in parallel; what is left is force-closed. Default 10 000. */
  timeoutMs?: number;
  /**
   * After a shutdown that a signal started (app.enableShutdownHooks()), let the process end with exit code
   * 0 instead of Nest's re-raise of the signal (exit 143), so a restart policy sees a clean stop. Default true.
   */
  exitZeroOnSignal?: boolean;
}

export interface DeadManOptions {
  /** A required connection down (not up or degraded) for this long makes the process exit. */
  downForMs: number;
  /** Exit code; non-zero so Docker's restart policy or the orchestrator replaces the container. Default 1. */
  exitCode?: number;
}

export interface ConnectionHealthModuleOptions {
  /** The connections to monitor, beside those that decorated providers declare. Default none. */
  connections?: ConnectionDefinition[];
  /** heartbeat / reconnect / failure options shared by every connection; each may override them. */
  defaults?: MonitorOptionsInput;
  shutdown?: ShutdownOptions;
  /**
   * Off by default. When set, a required connection that stays down for `downForMs`, or fails for good,
   * is logged at fatal level and the process exits with `exitCode`: standalone Docker never restarts an
   * unhealthy container, only an exited one.
   */
  deadMan?: DeadManOptions;
  /** Prometheus metrics through prom-client (an optional peer). Off unless given; `{}` uses prom-client's global registry. */
  metrics?: MetricsOptions;
  /**
   * The same metrics through @opentelemetry/api (an optional peer), and a span per state change where the
   * app traces. Off unless given; `true` uses the global MeterProvider and TracerProvider.
   */
  openTelemetry?: true | OpenTelemetryOptions;
  /**
   * Further values to scrub from every output (reasons, logs, events, snapshots, metrics, health bodies),
   * beside the credentials the package reads from each connection's options by itself: e.g. the API key a
   * custom ping uses. An undefined entry (a variable that is not set) is skipped. Default none.
   */
  secrets?: Array<string | undefined>;
  /**
   * Told of every state transition of every connection, fire-and-forget: `new WebhookPublisher({ url })`,
   * `new LogPublisher()`, or an object of the app's own with `publish(change, { signal })`. Default none
   * (nothing subscribes).
   */
  publishers?: ConnectionHealthPublisher[];
}
