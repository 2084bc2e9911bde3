import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectionEvent, StateChangeEvent } from '../../lib/index.js';
import type { TestApp } from './test-app.js';

/** Polls `condition` until it holds; fails the test, saying `what`, when it does not within `withinMs`. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, withinMs: number, what: string): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${withinMs} ms`);
    await sleep(20);
  }
}

/** Every state change and beat of each connection from the app's start, so that no transition is missed. */
export class StateLog {
  readonly events: ConnectionEvent[] = [];
  private readonly subscriptions: Array<{ unsubscribe(): void }> = [];

  constructor(app: TestApp, names: readonly string[]) {
    for (const name of names) this.subscriptions.push(app.registry.get(name).events$.subscribe((event) => this.events.push(event)));
  }

  /** The first transition of `name` to `state` at or after `since` (epoch ms). */
  first(name: string, state: string, since: number): StateChangeEvent | undefined {
    return this.events.find((e): e is StateChangeEvent => e.type === 'state' && e.name === name && e.to === state && e.at >= since);
  }

  /** Waits for that transition; resolves with how long after `since` it came, in ms. */
  async waitFor(name: string, state: string, since: number, withinMs: number): Promise<number> {
    await waitUntil(() => this.first(name, state, since) !== undefined, withinMs, `${name} reads ${state}`);
    return Math.round(this.first(name, state, since)!.at - since);
  }

  states(name: string, since = 0): string[] {
    return this.events.filter((e): e is StateChangeEvent => e.type === 'state' && e.name === name && e.at >= since).map((e) => e.to);
  }

  beats(name: string, since = 0): ConnectionEvent[] {
    return this.events.filter((e) => e.type === 'heartbeat' && e.name === name && e.at >= since);
  }

  stop(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
  }
}
