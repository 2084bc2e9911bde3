import { OptionChecker, optionNames } from './core/option-checker.js';
import { MONITOR_OPTION_GROUPS, resolveMonitorOptions } from './core/resolve-monitor-options.js';
import type { ConnectionHealthModuleOptions, DeadManOptions, ShutdownOptions } from './interfaces/connection-health-options.interface.js';
import type { HealthControllerOptions, HealthDetailLevel } from './interfaces/health-controller-options.interface.js';
import type { MetricsOptions } from './interfaces/metrics-options.interface.js';
import type { OpenTelemetryOptions } from './interfaces/opentelemetry-options.interface.js';
import { checkPublishers } from './publishers/publishers.check.js';

/** The module's own options: forRoot's, or what forRootAsync's factory returns. */
export const MODULE_OPTIONS = optionNames<ConnectionHealthModuleOptions>({ connections: true, defaults: true, shutdown: true, deadMan: true, metrics: true, openTelemetry: true, secrets: true, publishers: true });
export const SHUTDOWN_OPTIONS = optionNames<ShutdownOptions>({ drainDelayMs: true, timeoutMs: true, exitZeroOnSignal: true });
export const DEAD_MAN_OPTIONS = optionNames<DeadManOptions>({ downForMs: true, exitCode: true });
export const METRICS_OPTIONS = optionNames<MetricsOptions>({ registry: true, prefix: true });
export const OPENTELEMETRY_OPTIONS = optionNames<OpenTelemetryOptions>({ meterProvider: true, tracerProvider: true, prefix: true });
/** What needs @opentelemetry/api, in its install hint. */
export const OPENTELEMETRY_FEATURE = 'OpenTelemetry (the openTelemetry option)';
export const HEALTH_CONTROLLER_OPTIONS = optionNames<HealthControllerOptions>({ path: true, details: true, decorators: true, port: true, host: true, awaitAppListen: true, ui: true });
/** Given to forRoot() or forRootAsync() themselves: the routes and the scope are fixed before any factory runs. */
export const EXTRAS = ['isGlobal', 'healthController'] as const;
export const DETAIL_LEVELS: readonly HealthDetailLevel[] = ['full', 'status', 'none'];

/**
 * Checks the module's options at bootstrap, whichever way they came: every value, and no key the module
 * does not take. `place` names the registration, e.g. `ConnectionHealthModule.forRoot()`.
 */
export function checkModuleOptions(options: ConnectionHealthModuleOptions, place: string): OptionChecker {
  const check = new OptionChecker('*', place);
  check.that(
    typeof options === 'object' && options !== null && !Array.isArray(options),
    'options',
    options,
    'The options are an object such as { connections: [...] }; an async factory must return one.',
  );
  for (const extra of EXTRAS) {
    check.that(
      !(extra in options),
      extra,
      (options as Record<string, unknown>)[extra],
      `Give it to ConnectionHealthModule.forRootAsync({ ${extra}, useFactory }) itself, not in the options its factory returns: ` +
        'routes and scope are fixed before any factory runs.',
    );
  }
  check.knownKeys(undefined, options, MODULE_OPTIONS, 'the module');
  const { connections, defaults, shutdown, deadMan, metrics, openTelemetry, secrets, publishers } = options;
  check.that(
    connections === undefined || Array.isArray(connections),
    'connections',
    connections,
    "Pass an array of connection definitions, e.g. [{ name: 'db', kind: 'typeorm', dataSource: DataSource }].",
  );
  check.that(
    secrets === undefined || (Array.isArray(secrets) && secrets.every((secret) => secret === undefined || typeof secret === 'string')),
    'secrets',
    secrets,
    'Pass an array whose entries are strings (or undefined, for a variable that is not set), e.g. [process.env.API_KEY].',
  );
  check.knownKeys('defaults', defaults, MONITOR_OPTION_GROUPS);
  // The defaults alone must make sense even with no connection; each connection checks its own mix again.
  resolveMonitorOptions('*', {}, defaults, new OptionChecker('*', place, 'defaults.'));

  if (metrics !== undefined) {
    check.knownKeys('metrics', metrics, METRICS_OPTIONS);
    check.that(
      metrics.prefix === undefined || (typeof metrics.prefix === 'string' && /^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(metrics.prefix)),
      'metrics.prefix',
      metrics.prefix,
      'Use letters, digits, underscores and colons, not starting with a digit (Prometheus metric names).',
    );
    check.needsPeer('prom-client', 'Prometheus metrics (the metrics option)');
  }
  if (openTelemetry !== undefined) checkOpenTelemetry(check, openTelemetry);
  checkPublishers(check, publishers);
  if (shutdown !== undefined) {
    check.knownKeys('shutdown', shutdown, SHUTDOWN_OPTIONS);
    if (shutdown.drainDelayMs !== undefined && shutdown.drainDelayMs !== 0) check.duration('shutdown.drainDelayMs', shutdown.drainDelayMs);
    if (shutdown.timeoutMs !== undefined) check.duration('shutdown.timeoutMs', shutdown.timeoutMs);
    check.oneOf('shutdown.exitZeroOnSignal', shutdown.exitZeroOnSignal, [true, false]);
  }
  if (deadMan !== undefined) {
    check.knownKeys('deadMan', deadMan, DEAD_MAN_OPTIONS);
    check.duration('deadMan.downForMs', deadMan.downForMs);
    check.exitCode('deadMan.exitCode', deadMan.exitCode ?? 1);
  }
  return check;
}

function checkOpenTelemetry(check: OptionChecker, openTelemetry: true | OpenTelemetryOptions): void {
  check.that(
    openTelemetry === true || (typeof openTelemetry === 'object' && openTelemetry !== null && !Array.isArray(openTelemetry)),
    'openTelemetry',
    openTelemetry,
    'Use true (the global MeterProvider and TracerProvider) or an object with some of: meterProvider, tracerProvider, prefix; leave it out for none.',
  );
  if (openTelemetry !== true) {
    check.knownKeys('openTelemetry', openTelemetry, OPENTELEMETRY_OPTIONS);
    const { meterProvider, tracerProvider, prefix } = openTelemetry;
    check.that(
      meterProvider === undefined || typeof (meterProvider as { getMeter?: unknown } | null)?.getMeter === 'function',
      'openTelemetry.meterProvider',
      meterProvider,
      "Pass an OpenTelemetry MeterProvider (one with getMeter(), e.g. the SDK's new MeterProvider({ readers })), or leave it out for the global one.",
    );
    check.that(
      tracerProvider === undefined || typeof (tracerProvider as { getTracer?: unknown } | null)?.getTracer === 'function',
      'openTelemetry.tracerProvider',
      tracerProvider,
      'Pass an OpenTelemetry TracerProvider (one with getTracer()), or leave it out for the global one.',
    );
    check.that(
      prefix === undefined || (typeof prefix === 'string' && /^[a-zA-Z][a-zA-Z0-9_]*$/.test(prefix)),
      'openTelemetry.prefix',
      prefix,
      'Use letters, digits and underscores, starting with a letter (valid as an OpenTelemetry instrument name and as a Prometheus one).',
    );
  }
  check.needsPeer('@opentelemetry/api', OPENTELEMETRY_FEATURE);
}

/**
 * Checks forRoot's extras when forRoot() or forRootAsync() is called: they shape the module itself (its
 * scope, its routes), before any provider or factory runs.
 */
export function checkModuleExtras(extras: { isGlobal?: unknown; healthController?: unknown }, place: string): void {
  const check = new OptionChecker('*', place);
  check.oneOf('isGlobal', extras.isGlobal, [true, false]);
  const controller = extras.healthController as HealthControllerOptions | false | undefined;
  if (controller === undefined || controller === false) return;
  check.knownKeys('healthController', controller, HEALTH_CONTROLLER_OPTIONS);
  check.that(
    controller.path === undefined || typeof controller.path === 'string',
    'healthController.path',
    controller.path,
    "Use a route path such as 'health' or 'internal/health'.",
  );
  check.oneOf('healthController.details', controller.details, DETAIL_LEVELS);
  const { decorators, port, host, awaitAppListen, ui } = controller;
  check.oneOf('healthController.ui', ui, [true, false]);
  check.that(
    decorators === undefined || (Array.isArray(decorators) && decorators.every((decorator) => typeof decorator === 'function')),
    'healthController.decorators',
    decorators,
    'Pass an array of class decorators, called as above a class, e.g. [SkipThrottle(), Public()].',
  );
  check.that(
    port === undefined || (Number.isInteger(port) && port >= 1 && port <= 65535),
    'healthController.port',
    port,
    // Not 0: `Number(process.env.HEALTH_PORT)` of an empty variable is 0, and a port nobody knows would fail every probe.
    'Use a whole number from 1 to 65535 for the management port, or leave it out to serve the probes as routes of the app.',
  );
  check.that(
    port === undefined || decorators === undefined,
    'healthController.decorators',
    decorators,
    'The management port (healthController.port) serves the probes outside Nest, where no guard, interceptor or throttler applies: ' +
      'leave decorators out, or leave port out to serve the probes as routes of the app.',
  );
  check.that(
    host === undefined || (port !== undefined && typeof host === 'string' && host.trim() !== ''),
    'healthController.host',
    host,
    port === undefined
      ? 'host is where the management port listens: give healthController.port too, or leave host out.'
      : "Use an address or host name such as '0.0.0.0' or '127.0.0.1', or leave it out to listen on every interface.",
  );
  check.that(
    awaitAppListen === undefined || (port !== undefined && typeof awaitAppListen === 'boolean'),
    'healthController.awaitAppListen',
    awaitAppListen,
    port === undefined
      ? "awaitAppListen holds the management port's readiness until the app listens: give healthController.port too, or leave it out."
      : "Use true (readiness waits until the app's own HTTP server listens) or false (an app that never calls listen()).",
  );
}
