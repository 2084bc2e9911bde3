import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectionEvent } from '../core/connection-event.js';
import type { ConnectionSnapshot } from '../core/connection-snapshot.js';
import { ConnectionHistory, RTT_SAMPLES, TIMELINE_MAX, TIMELINE_MS } from './connection-history.js';

const snapshot = {} as ConnectionSnapshot;
const beat = (at: number, rttMs?: number): ConnectionEvent => ({ type: 'heartbeat', name: 'db', ok: rttMs !== undefined, rttMs, at, snapshot });
const change = (at: number, to: 'up' | 'down'): ConnectionEvent => ({
  type: 'state',
  name: 'db',
  from: to === 'up' ? 'down' : 'up',
  to,
  reason: `to ${to} at ${at}`,
  at,
  snapshot,
});

describe('ConnectionHistory', () => {
  it('keeps the RTTs of the last 60 beats, oldest first, with NaN for a failed beat', () => {
    const history = new ConnectionHistory();
    assert.deepEqual(history.recentRtts(), []);
    for (let i = 0; i < RTT_SAMPLES + 15; i++) history.record(beat(i, i === RTT_SAMPLES + 14 ? undefined : i));
    const rtts = history.recentRtts();
    assert.equal(rtts.length, RTT_SAMPLES);
    assert.equal(rtts[0], 15);
    assert.equal(rtts.at(-2), RTT_SAMPLES + 13);
    assert.ok(Number.isNaN(rtts.at(-1)));
  });

  it('keeps the transitions of the last hour only, and at most TIMELINE_MAX of them', () => {
    const history = new ConnectionHistory();
    history.record(change(0, 'down'));
    history.record(change(1_000, 'up'));
    assert.equal(history.transitions(2_000).length, 2);
    assert.deepEqual(
      history.transitions(TIMELINE_MS + 500).map((t) => t.reason),
      ['to up at 1000'],
      'the one older than an hour is gone',
    );
    for (let i = 0; i < TIMELINE_MAX * 3; i++) history.record(change(2_000 + i, i % 2 ? 'up' : 'down'));
    const kept = history.transitions(2_000 + TIMELINE_MAX * 3);
    assert.equal(kept.length, TIMELINE_MAX);
    assert.equal(kept.at(-1)!.at, 2_000 + TIMELINE_MAX * 3 - 1, 'the newest are kept');
  });
});
