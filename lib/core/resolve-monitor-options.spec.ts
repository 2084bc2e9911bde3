import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConnectionHealthConfigError } from './errors/connection-health-config.error.js';
import { resolveMonitorOptions } from './resolve-monitor-options.js';

function rejection(input: Parameters<typeof resolveMonitorOptions>[1]): ConnectionHealthConfigError {
  try {
    resolveMonitorOptions('orders-db', input);
  } catch (error) {
    assert.ok(error instanceof ConnectionHealthConfigError);
    return error;
  }
  assert.fail('expected a configuration error');
}

describe('resolveMonitorOptions', () => {
  it('fills every default and derives the staleness bound', () => {
    const options = resolveMonitorOptions('db');
    assert.deepEqual(options, {
      heartbeat: {
        intervalMs: 30_000,
        timeoutMs: 5_000,
        connectTimeoutMs: 10_000,
        jitter: 0.1,
        failureThreshold: 1,
        lagToleranceMs: 1_000,
        staleAfterMs: 70_000,
      },
      suspicion: { enabled: true, phiThreshold: 8, minStdDevMs: 50, windowSize: 50, minSamples: 5 },
      reconnect: { initialDelayMs: 1_000, maxDelayMs: 30_000, factor: 2, jitter: 0.5, maxAttempts: 10 },
      failure: { policy: 'retry', exitCode: 1 },
    });
    assert.ok(Object.isFrozen(options) && Object.isFrozen(options.heartbeat));
  });

  it('lays per-connection options over module defaults', () => {
    const options = resolveMonitorOptions(
      'db',
      { heartbeat: { timeoutMs: 1_000 } },
      { heartbeat: { intervalMs: 5_000, timeoutMs: 2_000 }, reconnect: { maxAttempts: Infinity } },
    );
    assert.equal(options.heartbeat.intervalMs, 5_000);
    assert.equal(options.heartbeat.timeoutMs, 1_000);
    assert.equal(options.reconnect.maxAttempts, Infinity);
  });

  const cases: Array<[string, Parameters<typeof resolveMonitorOptions>[1], string, RegExp]> = [
    ['zero', { heartbeat: { intervalMs: 0 } }, 'heartbeat.intervalMs', /is 0\. Use a number of milliseconds above 0/],
    ['negative', { reconnect: { initialDelayMs: -5 } }, 'reconnect.initialDelayMs', /is -5\./],
    ['NaN', { heartbeat: { timeoutMs: NaN } }, 'heartbeat.timeoutMs', /is NaN\./],
    ['above the timer limit', { heartbeat: { intervalMs: 2 ** 31 } }, 'heartbeat.intervalMs', /at most 2147483647/],
    ['a string', { heartbeat: { intervalMs: '5000' as unknown as number } }, 'heartbeat.intervalMs', /is "5000"/],
    ['non-integer count', { heartbeat: { failureThreshold: 1.5 } }, 'heartbeat.failureThreshold', /whole number/],
    ['non-integer attempts', { reconnect: { maxAttempts: 2.5 } }, 'reconnect.maxAttempts', /whole number of at least 1 or Infinity/],
    ['timeout not below interval', { heartbeat: { intervalMs: 5_000, timeoutMs: 5_000 } }, 'heartbeat.timeoutMs', /below heartbeat\.intervalMs \(5000\)/],
    ['jitter above its range', { heartbeat: { jitter: 0.9 } }, 'heartbeat.jitter', /fraction from 0 to 0\.5/],
    ['factor below 1', { reconnect: { factor: 0.5 } }, 'reconnect.factor', /at least 1/],
    ['initial above max', { reconnect: { initialDelayMs: 60_000 } }, 'reconnect.initialDelayMs', /must not exceed reconnect\.maxDelayMs/],
    ['stale bound too small', { heartbeat: { staleAfterMs: 1_000 } }, 'heartbeat.staleAfterMs', /must exceed intervalMs \+ failureThreshold \* timeoutMs \(35000\)/],
    ['a phi threshold out of range', { suspicion: { phiThreshold: 0.5 } }, 'suspicion.phiThreshold', /from 1 to 16/],
    ['more samples needed than kept', { suspicion: { windowSize: 10, minSamples: 20 } }, 'suspicion.minSamples', /must not exceed suspicion\.windowSize \(10\)/],
    ['unknown policy', { failure: { policy: 'panic' as never } }, 'failure.policy', /'retry', 'stop', 'exit'/],
    ['exit code 0', { failure: { exitCode: 0 } }, 'failure.exitCode', /1 to 255/],
    ['a typo', { heartbeat: { interval: 5_000 } as never }, 'heartbeat.interval', /no such option; heartbeat takes intervalMs/],
  ];
  for (const [label, input, option, message] of cases) {
    it(`rejects ${label}, naming the connection, the option, the value and the fix`, () => {
      const error = rejection(input);
      assert.equal(error.name, 'ConnectionHealthConfigError');
      assert.equal(error.connection, 'orders-db');
      assert.equal(error.option, option);
      assert.match(error.message, new RegExp(`^Connection "orders-db": option "${option.replace('.', '\\.')}" is `));
      assert.match(error.message, message);
    });
  }
});
