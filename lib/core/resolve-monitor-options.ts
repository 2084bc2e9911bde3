import { OptionChecker } from './option-checker.js';
import {
  DEFAULT_FAILURE,
  DEFAULT_HEARTBEAT,
  DEFAULT_RECONNECT,
  type FailurePolicy,
  type MonitorOptions,
  type MonitorOptionsInput,
} from './monitor-options.js';

const FAILURE_POLICIES: readonly FailurePolicy[] = ['retry', 'stop', 'exit'];

/**
 * Merges per-connection options over module defaults over built-in defaults, and checks every value, so a
 * bad configuration stops the bootstrap with a message that names the connection, the option, the value
 * and the fix, instead of a monitor that beats in a busy loop or never.
 */
export function resolveMonitorOptions(
  connection: string,
  input: MonitorOptionsInput = {},
  defaults: MonitorOptionsInput = {},
): MonitorOptions {
  const check = new OptionChecker(connection);
  for (const group of ['heartbeat', 'reconnect', 'failure'] as const) {
    check.knownKeys(group, defaults[group], Object.keys(builtIn[group]));
    check.knownKeys(group, input[group], Object.keys(builtIn[group]));
  }
  const merged = {
    heartbeat: { ...DEFAULT_HEARTBEAT, ...defaults.heartbeat, ...input.heartbeat },
    reconnect: { ...DEFAULT_RECONNECT, ...defaults.reconnect, ...input.reconnect },
    failure: { ...DEFAULT_FAILURE, ...defaults.failure, ...input.failure },
  };

  const { heartbeat, reconnect, failure } = merged;
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
  const staleAfterMs =
    (input.heartbeat?.staleAfterMs ?? defaults.heartbeat?.staleAfterMs) ?? 2 * (heartbeat.intervalMs + heartbeat.timeoutMs);
  check.duration('heartbeat.staleAfterMs', staleAfterMs);
  check.that(
    staleAfterMs > heartbeat.intervalMs + heartbeat.timeoutMs,
    'heartbeat.staleAfterMs',
    staleAfterMs,
    `It must exceed intervalMs + timeoutMs (${heartbeat.intervalMs + heartbeat.timeoutMs}), or healthy snapshots would read as stale.`,
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

  return Object.freeze({
    heartbeat: Object.freeze({ ...heartbeat, staleAfterMs }),
    reconnect: Object.freeze(reconnect),
    failure: Object.freeze(failure),
  });
}

const builtIn = {
  heartbeat: { ...DEFAULT_HEARTBEAT, staleAfterMs: 0 },
  reconnect: DEFAULT_RECONNECT,
  failure: { ...DEFAULT_FAILURE, onFailure: undefined },
};
