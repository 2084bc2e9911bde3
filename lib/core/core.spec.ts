import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay } from './backoff.js';
import type { ConnectionSnapshot } from './connection-snapshot.js';
import { readHealth } from './connection-snapshot.js';
import { withDeadline } from './deadline.js';
import { FakeClock } from '../testing/fake-clock.js';
import { DEFAULT_RECONNECT } from './monitor-options.js';
import { describeError } from './redact.js';

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7].map((attempt) => backoffDelay(attempt, DEFAULT_RECONNECT, () => 0));
    assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });

  it('keeps every jittered delay within [capped * (1 - jitter), capped]', () => {
    for (let i = 0; i < 1_000; i++) {
      const delay = backoffDelay(4, DEFAULT_RECONNECT, Math.random);
      assert.ok(delay > 4_000 && delay <= 8_000, `${delay}`);
    }
  });
});

describe('readHealth', () => {
  const base: ConnectionSnapshot = {
    name: 'db',
    kind: 'typeorm',
    state: 'up',
    since: 1_000,
    reason: 'connected',
    lastBeatAt: 5_000,
    consecutiveFailures: 0,
    reconnectAttempts: 0,
    staleAfterMs: 10_000,
  };

  it('reads up, degraded and every other state as down', () => {
    assert.deepEqual(readHealth(base, 6_000), { status: 'up', stale: false });
    assert.deepEqual(readHealth({ ...base, state: 'degraded' }, 6_000), { status: 'degraded', stale: false });
    for (const state of ['idle', 'connecting', 'down', 'reconnecting', 'failed', 'closing', 'closed'] as const) {
      assert.equal(readHealth({ ...base, state }, 6_000).status, 'down', state);
    }
  });

  it('reads a serving snapshot older than its staleness bound as down', () => {
    assert.deepEqual(readHealth(base, 15_000), { status: 'up', stale: false });
    assert.deepEqual(readHealth(base, 15_001), { status: 'down', stale: true });
  });
});

describe('withDeadline', () => {
  it('rejects at the deadline, aborts the task and clears its timer when the task answers first', async () => {
    const clock = new FakeClock();
    let aborted = false;
    const hung = withDeadline(
      (signal) => new Promise<void>(() => signal.addEventListener('abort', () => (aborted = true))),
      { clock, timeoutMs: 100, lagToleranceMs: 50, onTimeout: () => new Error('late') },
    );
    const judged = assert.rejects(hung, /late/);
    await clock.advance(100);
    await judged;
    assert.equal(aborted, true);
    const quick = withDeadline(async () => 'ok', { clock, timeoutMs: 100, lagToleranceMs: 50, onTimeout: () => new Error('late') });
    assert.equal(await quick, 'ok');
    assert.equal(clock.pendingTimers, 0);
  });

  it('rejects at once with the reason of an outer abort', async () => {
    const clock = new FakeClock();
    const outer = new AbortController();
    const running = withDeadline(() => new Promise<void>(() => undefined), {
      clock,
      timeoutMs: 100,
      lagToleranceMs: 50,
      signal: outer.signal,
      onTimeout: () => new Error('late'),
    });
    outer.abort(new Error('shutting down'));
    await assert.rejects(running, /shutting down/);
    assert.equal(clock.pendingTimers, 0);
  });
});

describe('describeError', () => {
  it('puts an error code before a message that lacks it', () => {
    const error = Object.assign(new Error('connect failed'), { code: 'ECONNREFUSED' });
    assert.equal(describeError(error), 'ECONNREFUSED: connect failed');
  });
});
