import type { BeatReport } from '../../core/connection-adapter.interface.js';
import { messages } from '../../core/messages.js';
import type { PgPoolLike } from './typeorm-drivers.js';

/**
 * How the app's pg.Pool copes, read from its own counters at each beat: connections open, idle and the
 * pool's maximum, and queries waiting for a connection. Queries waiting make an impairment: the database
 * answers (the probe proved it), the app is slowed by its own pool, so the connection reads degraded.
 *
 * The time a query waits for a connection is measured only while the pool has no free connection, by
 * queueing once behind the app's queries and handing the connection back the moment it arrives: the
 * package never holds one of the app's connections, never makes the pool open one, and has at most one
 * such wait in the queue.
 */
export class PgPoolPressure {
  /** When the package's own wait in the pool's queue began, while it lasts. */
  private waitingSince?: number;
  /** How long the last finished wait took, until a beat has reported it. */
  private lastWaitMs?: number;

  constructor(
    private readonly poolOf: () => PgPoolLike | undefined,
    private readonly now: () => number = () => performance.now(),
  ) {}

  read(): BeatReport | undefined {
    const pool = this.poolOf();
    if (!pool) return undefined;
    const ownWait = this.waitingSince === undefined ? 0 : 1;
    const waiting = Math.max(0, pool.waitingCount - ownWait);
    const full = pool.idleCount === 0 && pool.totalCount >= pool.options.max;
    if (full && ownWait === 0) this.measureWait(pool);
    const figures = {
      poolTotal: pool.totalCount,
      poolIdle: pool.idleCount,
      poolWaiting: waiting,
      poolMax: pool.options.max,
      poolAcquireMs: this.acquireMs(),
    };
    return waiting > 0 ? { impairment: messages.typeormPoolSaturated(), figures } : { figures };
  }

  /** The wait still running (so far), else the last one not yet reported, else 0: a free connection was there. */
  private acquireMs(): number {
    if (this.waitingSince !== undefined) return Math.round(this.now() - this.waitingSince);
    const last = this.lastWaitMs ?? 0;
    this.lastWaitMs = undefined;
    return last;
  }

  private measureWait(pool: PgPoolLike): void {
    const since = this.now();
    this.waitingSince = since;
    void pool
      .connect()
      .then((client) => client.release())
      .catch(() => undefined) // the pool's own connectionTimeoutMillis, or the app ended it: the wait is over all the same
      .finally(() => {
        this.lastWaitMs = Math.round(this.now() - since);
        this.waitingSince = undefined;
      });
  }
}
