import * as timers from 'node:timers';
import type { Clock, TimerHandle } from '../core/clock.js';

interface FakeTimer {
  readonly at: number;
  readonly callback: () => void;
  readonly name?: string;
}

/**
 * Lets every pending promise chain settle: setImmediate runs after the microtask queue has drained. Node's own
 * setImmediate, not the global one that `jest.useFakeTimers()` and `vi.useFakeTimers()` replace: with theirs,
 * every step would wait for a fake tick that the test never gives. Taken when this module loads, as the
 * module's own property is replaced too by some (node:test's mock.timers, sinon on the real global).
 */
const realSetImmediate = timers.setImmediate;
export const settle = (): Promise<void> => new Promise((resolve) => realSetImmediate(resolve));

/**
 * Fake time for tests: timers fire only when the test advances the clock, in due order, with promise chains
 * settled between them. `block()` moves time without firing anything, as a blocked event loop does.
 *
 * `ConnectionHealthTesting` runs the package's heartbeats, deadlines, reconnect backoff, staleness and
 * dead-man switch on one of these (`testing.clock`): `await testing.clock.advance(30_000)` is 30 seconds
 * of the package's time, in no real time. The app's own timers and Nest's stay on real time.
 */
export class FakeClock implements Clock {
  private time: number;
  private nextId = 1;
  private readonly timers = new Map<number, FakeTimer>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.time = start;
  }

  /** The fake time, in milliseconds since the epoch: it moves only through advance() and block(). */
  now(): number {
    return this.time;
  }

  /** Schedules `callback` at now() + `delayMs` of fake time. */
  setTimer(callback: () => void, delayMs: number, name?: string): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + Math.max(0, delayMs), callback, name });
    return id;
  }

  /** Cancels a pending timer; a fired or unknown one is ignored. */
  clearTimer(handle: TimerHandle): void {
    this.timers.delete(handle as number);
  }

  /** Timers still pending: after close() this must be zero. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Names of pending named timers. */
  get pendingNames(): string[] {
    return [...this.timers.values()].flatMap((timer) => (timer.name ? [timer.name] : []));
  }

  /**
   * Milliseconds until the named timer is due (0 when it is overdue), or undefined when none of that name
   * is pending. A connection's next heartbeat or reconnect attempt is named `connection-health:<name>`.
   */
  dueIn(name: string): number | undefined {
    for (const timer of this.timers.values()) if (timer.name === name) return Math.max(0, timer.at - this.time);
    return undefined;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    await settle();
    for (;;) {
      const due = this.earliestDue(target);
      if (!due) break;
      const [id, timer] = due;
      this.timers.delete(id);
      this.time = Math.max(this.time, timer.at);
      timer.callback();
      await settle();
    }
    this.time = target;
    await settle();
  }

  /** Moves time forward without firing timers: they fire late at the next advance(). */
  block(ms: number): void {
    this.time += ms;
  }

  private earliestDue(limit: number): [number, FakeTimer] | undefined {
    let found: [number, FakeTimer] | undefined;
    for (const entry of this.timers) {
      if (entry[1].at <= limit && (!found || entry[1].at < found[1].at)) found = entry;
    }
    return found;
  }
}
