import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgPoolPressure } from './pg-pool.pressure.js';
import type { PgPoolLike } from './typeorm-drivers.js';

/** A pool's counters as pg.Pool shows them; connect() queues forever, as in a saturated pool. */
function pool(counts: { total: number; idle: number; waiting: number }): PgPoolLike {
  return { totalCount: counts.total, idleCount: counts.idle, waitingCount: counts.waiting, options: { max: 4 }, connect: () => new Promise(() => undefined) };
}

describe('PgPoolPressure', () => {
  it('reads a pool degraded only when queries wait at two beats in a row, so a busy pool does not flap', () => {
    let current = pool({ total: 4, idle: 1, waiting: 0 });
    const pressure = new PgPoolPressure(() => current);
    const verdicts: string[] = [];
    const beat = (counts: { total: number; idle: number; waiting: number }) => {
      current = pool(counts);
      verdicts.push(pressure.read()?.impairment ? 'degraded' : 'up');
    };
    beat({ total: 4, idle: 1, waiting: 0 });
    beat({ total: 3, idle: 0, waiting: 1 }); // one query waits for a moment: busy, not saturated
    beat({ total: 4, idle: 2, waiting: 0 });
    beat({ total: 4, idle: 0, waiting: 3 });
    beat({ total: 4, idle: 0, waiting: 5 }); // still waiting a beat later: saturated
    beat({ total: 4, idle: 1, waiting: 0 });
    assert.deepEqual(verdicts, ['up', 'up', 'up', 'up', 'degraded', 'up']);
  });
});
