import { OptionChecker, optionNames } from './option-checker.js';
import {
  DEFAULT_FAILURE,
  DEFAULT_HEARTBEAT,
  DEFAULT_RECONNECT,
  DEFAULT_SUSPICION,
  type FailureOptions,
  type FailurePolicy,
  type HeartbeatOptions,
  type MonitorOptions,
  type MonitorOptionsInput,
  type ReconnectOptions,
  type SuspicionOptions,
} from './monitor-options.js';

const FAILURE_POLICIES: readonly FailurePolicy[] = ['retry', 'stop', 'exit'];
/** The groups of engine options, per connection and in the module's `defaults`. */
export const MONITOR_OPTION_GROUPS = ['heartbeat', 'suspicion', 'reconnect', 'failure'] as const;
/** The options of each group, per connection and in the module's `defaults`. */
export const MONITOR_GROUP_OPTIONS: Readonly<Record<(typeof MONITOR_OPTION_GROUPS)[number], readonly string[]>> = {
  heartbeat: optionNames<HeartbeatOptions>({
    intervalMs: true,
    timeoutMs: true,
    connectTimeoutMs: true,
    jitter: true,
    failureThreshold: true,
    lagToleranceMs: true,
    staleAfterMs: true,
  }),
  suspicion: optionNames<SuspicionOptions>({ enabled: true, phiThreshold: true, minStdDevMs: true, windowSize: true, minSamples: true }),
  reconnect: optionNames<ReconnectOptions>({ initialDelayMs: true, maxDelayMs: true, factor: true, jitter: true, maxAttempts: true }),
  failure: optionNames<FailureOptions>({ policy: true, exitCode: true, onFailure: true }),
};

/**
 * Merges per-connection options over module defaults over built-in defaults, and checks every value, so a
 * bad configuration stops the bootstrap with a message that names the connection, the option, the value
 * and the fix, instead of a monitor that beats in a busy loop or never.
 */
export function resolveMonitorOptions(
  connection: string,
  input: MonitorOptionsInput = {},
  defaults: MonitorOptionsInput = {},
  check = new OptionChecker(connection),
): MonitorOptions {
  for (const group of MONITOR_OPTION_GROUPS) {
    check.knownKeys(group, defaults[group], MONITOR_GROUP_OPTIONS[group]);
    check.knownKeys(group, input[group], MONITOR_GROUP_OPTIONS[group]);
  }
  const merged = {
    heartbeat: { ...DEFAULT_HEARTBEAT, ...defaults.heartbeat, ...input.heartbeat },
    suspicion: { ...DEFAULT_SUSPICION, ...defaults.suspicion, ...input.suspicion },
    reconnect: { ...DEFAULT_RECONNECT, ...defaults.reconnect, ...input.reconnect },
    failure: { ...DEFAULT_FAILURE, ...defaults.failure, ...input.failure },
  };

  const { heartbeat, suspicion, reconnect, failure } = merged;
  check.duration('heartbeat.intervalMs', heartbeat.intervalMs);
  check.duration('heartbeat.timeoutMs', heartbeat.timeoutMs);
  check.duration('heartbeat.connectTimeoutMs', heartbeat.connectTimeoutMs);
  check.duration('heartbeat.lagToleranceMs', heartbeat.lagToleranceMs);
  check.ratio('heartbeat.jitter', heartbeat.jitter, 0.5);
  check.count('heartbeat.failureThreshold', heartbeat.failureThreshold);
  check.that(
    heartbeat.timeoutMs < heartbeat.intervalMs,
    'heartbeat.timeoutMs',
    heartbeat.timeoutMs,
    `It must be below heartbeat.intervalMs (${heartbeat.intervalMs}), or beats would overlap; lower it or raise the interval.`,
  );
  // Beats of one failure episode follow each other at once, so the bound grows by a timeout per failure.
  const detectionBoundMs = heartbeat.intervalMs + heartbeat.failureThreshold * heartbeat.timeoutMs;
  const staleAfterMs = (input.heartbeat?.staleAfterMs ?? defaults.heartbeat?.staleAfterMs) ?? 2 * detectionBoundMs;
  check.duration('heartbeat.staleAfterMs', staleAfterMs);
  check.that(
    staleAfterMs > detectionBoundMs,
    'heartbeat.staleAfterMs',
    staleAfterMs,
    `It must exceed intervalMs + failureThreshold * timeoutMs (${detectionBoundMs}), or healthy snapshots would read as stale.`,
  );

  check.oneOf('suspicion.enabled', suspicion.enabled, [true, false], false);
  check.that(
    typeof suspicion.phiThreshold === 'number' && suspicion.phiThreshold >= 1 && suspicion.phiThreshold <= 16,
    'suspicion.phiThreshold',
    suspicion.phiThreshold,
    'Use a number from 1 to 16 (8 is a 1 in 10^8 chance that a healthy beat is this slow).',
  );
  check.duration('suspicion.minStdDevMs', suspicion.minStdDevMs);
  check.count('suspicion.windowSize', suspicion.windowSize);
  check.count('suspicion.minSamples', suspicion.minSamples);
  check.that(
    suspicion.minSamples <= suspicion.windowSize,
    'suspicion.minSamples',
    suspicion.minSamples,
    `It must not exceed suspicion.windowSize (${suspicion.windowSize}).`,
  );

  check.duration('reconnect.initialDelayMs', reconnect.initialDelayMs);
  check.duration('reconnect.maxDelayMs', reconnect.maxDelayMs);
  check.ratio('reconnect.jitter', reconnect.jitter, 1);
  check.that(
    Number.isFinite(reconnect.factor) && reconnect.factor >= 1,
    'reconnect.factor',
    reconnect.factor,
    'Use a number of at least 1 (1 = constant delay, 2 = doubling).',
  );
  check.that(
    reconnect.initialDelayMs <= reconnect.maxDelayMs,
    'reconnect.initialDelayMs',
    reconnect.initialDelayMs,
    `It must not exceed reconnect.maxDelayMs (${reconnect.maxDelayMs}).`,
  );
  if (reconnect.maxAttempts !== Infinity) check.count('reconnect.maxAttempts', reconnect.maxAttempts, 'or Infinity');

  check.that(
    FAILURE_POLICIES.includes(failure.policy),
    'failure.policy',
    failure.policy,
    `Use one of ${FAILURE_POLICIES.map((p) => `'${p}'`).join(', ')}.`,
  );
  check.exitCode('failure.exitCode', failure.exitCode);
  check.that(
    failure.onFailure === undefined || typeof failure.onFailure === 'function',
    'failure.onFailure',
    failure.onFailure,
    'Pass a function (snapshot) => void, or leave it out.',
  );

  return intern({ heartbeat: { ...heartbeat, staleAfterMs }, suspicion, reconnect, failure });
}

/**
 * Resolved options are immutable, and thousands of connections usually share a few configurations: equal
 * ones share one frozen object (a few hundred bytes less per connection). One with its own onFailure
 * callback keeps its own.
 */
const interned = new Map<string, MonitorOptions>();

function intern(options: MonitorOptions): MonitorOptions {
  const key = options.failure.onFailure ? undefined : JSON.stringify(options);
  const known = key === undefined ? undefined : interned.get(key);
  if (known) return known;
  const frozen: MonitorOptions = Object.freeze({
    heartbeat: Object.freeze({ ...options.heartbeat }),
    suspicion: Object.freeze({ ...options.suspicion }),
    reconnect: Object.freeze({ ...options.reconnect }),
    failure: Object.freeze({ ...options.failure }),
  });
  if (key !== undefined) interned.set(key, frozen);
  return frozen;
}

/** `over` laid on `base`, group by group: a kind's defaults under the module's, say. */
export function layerOptions(base: MonitorOptionsInput, over: MonitorOptionsInput = {}): MonitorOptionsInput {
  return {
    heartbeat: { ...base.heartbeat, ...over.heartbeat },
    suspicion: { ...base.suspicion, ...over.suspicion },
    reconnect: { ...base.reconnect, ...over.reconnect },
    failure: { ...base.failure, ...over.failure },
  };
}
