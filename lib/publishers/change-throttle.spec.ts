import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChangeThrottle } from './change-throttle.js';
import { changeText } from './change-text.js';
import type { ConnectionChange } from './connection-change.js';

function change(connection: string, to: ConnectionChange['to'], at: number): ConnectionChange {
  const from = to === 'up' ? 'reconnecting' : 'up';
  return { type: 'change', connection, kind: 'tcp', from, to, at, required: true, reason: `went ${to}`, reconnectAttempts: 0 };
}

describe('ChangeThrottle (time given as numbers)', () => {
  it('lets maxPerWindow transitions through, then holds the rest for one summary at the window end', () => {
    const throttle = new ChangeThrottle({ windowMs: 60_000, maxPerWindow: 3 });
    const offered = [0, 1_000, 2_000, 3_000, 4_000, 5_000, 6_000].map((at, i) => throttle.offer(change('db', i % 2 ? 'up' : 'down', at), at));
    assert.deepEqual(offered, [true, true, true, false, false, false, false]);
    assert.equal(throttle.nextDueAt(), 60_000);
    assert.deepEqual(throttle.due(59_999), []);
    const [summary, ...more] = throttle.due(60_000);
    assert.deepEqual(more, []);
    assert.equal(summary!.type, 'summary');
    assert.equal(summary!.changes, 7);
    assert.equal(summary!.to, 'down'); // the last one held: index 6
    assert.equal(summary!.at, 6_000);
    assert.equal(changeText(summary!), 'db (tcp, required) changed state 7 times in the last 60 s, now down: went down');
    assert.equal(throttle.nextDueAt(), undefined);
  });

  it('keeps a link that goes on flapping at one summary a window, and lets a quiet one through again', () => {
    const throttle = new ChangeThrottle({ windowMs: 10_000, maxPerWindow: 1 });
    assert.equal(throttle.offer(change('db', 'down', 0), 0), true);
    assert.equal(throttle.offer(change('db', 'up', 1_000), 1_000), false);
    assert.equal(throttle.due(10_000).length, 1);
    // The window after a summary starts full: still flapping, still held.
    assert.equal(throttle.offer(change('db', 'down', 11_000), 11_000), false);
    assert.equal(throttle.offer(change('db', 'up', 12_000), 12_000), false);
    assert.equal(throttle.nextDueAt(), 20_000);
    const [summary] = throttle.due(20_000);
    assert.equal(summary!.changes, 2);
    assert.equal(summary!.to, 'up');
    // Quiet for a whole window: the next transition goes through at once.
    assert.deepEqual(throttle.due(30_000), []);
    assert.equal(throttle.offer(change('db', 'down', 31_000), 31_000), true);
  });

  it('counts each connection on its own, and due(now, true) summarizes every held window at once (shutdown)', () => {
    const throttle = new ChangeThrottle({ windowMs: 60_000, maxPerWindow: 1 });
    assert.equal(throttle.offer(change('db', 'down', 0), 0), true);
    assert.equal(throttle.offer(change('mail', 'down', 0), 0), true);
    assert.equal(throttle.offer(change('db', 'up', 500), 500), false);
    assert.deepEqual(throttle.due(1_000), []);
    const summaries = throttle.due(1_000, true);
    assert.deepEqual(summaries.map((s) => [s.connection, s.changes, s.to]), [['db', 2, 'up']]);
  });

  it('a transition that comes after its window ended, before the summary was taken, joins that summary', () => {
    const throttle = new ChangeThrottle({ windowMs: 1_000, maxPerWindow: 1 });
    throttle.offer(change('db', 'down', 0), 0);
    throttle.offer(change('db', 'up', 100), 100);
    assert.equal(throttle.offer(change('db', 'down', 1_500), 1_500), false);
    const [summary] = throttle.due(1_500);
    assert.equal(summary!.changes, 3);
    assert.equal(summary!.to, 'down');
  });

  it('tells an ordinary outage at once (down, then up), folding its reconnect cycles; `failed` is never held', () => {
    const throttle = new ChangeThrottle();
    const outage: Array<[ConnectionChange['from'], ConnectionChange['to'], number]> = [
      ['up', 'down', 0],
      ['down', 'reconnecting', 1_000],
      ['reconnecting', 'down', 2_000],
      ['down', 'reconnecting', 4_000],
      ['reconnecting', 'down', 5_000],
      ['down', 'reconnecting', 9_000],
      ['reconnecting', 'up', 9_500],
    ];
    const sent = outage.filter(([from, to, at]) => throttle.offer({ ...change('db', to, at), from }, at)).map(([from, to]) => `${from}->${to}`);
    assert.deepEqual(sent, ['up->down', 'reconnecting->up']);
    assert.equal(throttle.nextDueAt(), undefined, 'nothing held for a summary');
    // A window already spent on flaps: `failed` still goes out at once, and no stale summary follows it.
    const flapping = new ChangeThrottle({ windowMs: 60_000, maxPerWindow: 1 });
    assert.equal(flapping.offer(change('db', 'down', 0), 0), true);
    assert.equal(flapping.offer(change('db', 'up', 1_000), 1_000), false);
    assert.equal(flapping.offer({ ...change('db', 'failed', 2_000), from: 'reconnecting' }, 2_000), true);
    assert.deepEqual(flapping.due(60_000, true), []);
  });

  it('a busy pool flapping up <-> degraded does not hold back the outage that follows (a budget of its own)', () => {
    const throttle = new ChangeThrottle(); // defaults: 3 per 60 s
    const step = (from: ConnectionChange['from'], to: ConnectionChange['to'], at: number) =>
      throttle.offer({ type: 'change', connection: 'db', kind: 'typeorm', from, to, at, required: true, reason: to, reconnectAttempts: 0 }, at);
    // pool pressure: degraded, never down (DESIGN), and it still serves
    assert.equal(step('up', 'degraded', 0), true);
    assert.equal(step('degraded', 'up', 5_000), true);
    assert.equal(step('up', 'degraded', 10_000), true);
    // then the database dies: the human needs this now, not at the window's end
    assert.equal(step('degraded', 'down', 12_000), true, `down held back until ${throttle.nextDueAt()} (48 s late)`);
  });

  it('the retry policy cycling failed -> up -> down -> failed is throttled: failed -> up counts', () => {
    const throttle = new ChangeThrottle({ windowMs: 60_000, maxPerWindow: 3 });
    const step = (from: ConnectionChange['from'], to: ConnectionChange['to'], at: number) =>
      throttle.offer({ type: 'change', connection: 'db', kind: 'tcp', from, to, at, required: true, reason: to, reconnectAttempts: 0 }, at);
    let sent = 0;
    for (let cycle = 0; cycle < 10; cycle++) {
      const at = cycle * 5_000;
      for (const [from, to] of [['up', 'down'], ['down', 'failed'], ['failed', 'up']] as const) if (step(from, to, at)) sent += 1;
    }
    assert.ok(sent <= 3 + 10, `${sent} messages in one 60 s window (failed passes by design: at most 10 of them)`);
  });
});
