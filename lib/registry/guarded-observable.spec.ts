import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { filter, firstValueFrom, map, share, Subject, take } from 'rxjs';
import { GuardedObservable } from './guarded-observable.js';

/**
 * RxJS rethrows a subscriber's error on a timer and Node ends the process on an unhandled rejection:
 * either would land here instead of crashing the test runner, and fail the test.
 */
const escaped: unknown[] = [];
const onEscape = (error: unknown) => void escaped.push(error);

/** Lets rxjs' rethrow timer (setTimeout 0) and pending promise jobs run. */
const settle = () => sleep(20);

function guarded<T>(source: Subject<T>) {
  const reports: string[] = [];
  const observable = GuardedObservable.of(source, { connection: 'broker', stream: 'events$', report: (_error, message) => void reports.push(message) });
  return { observable, reports };
}

describe('GuardedObservable', () => {
  before(() => {
    process.on('uncaughtException', onEscape);
    process.on('unhandledRejection', onEscape);
  });
  after(() => {
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
  });

  it('logs a subscriber that throws, through a pipe chain, and every other subscriber still gets every value', async () => {
    const source = new Subject<number>();
    const { observable, reports } = guarded(source);
    const piped = observable.pipe(
      filter((value) => value % 2 === 0),
      map((value) => value * 10),
    );
    assert.ok(piped instanceof GuardedObservable, 'pipe() keeps the guard');
    const seen: number[] = [];
    const seenPiped: number[] = [];
    piped.subscribe(() => {
      throw new Error('boom');
    });
    observable.subscribe((value) => seen.push(value));
    piped.subscribe((value) => seenPiped.push(value));
    for (const value of [1, 2, 3, 4]) source.next(value);
    await settle();
    assert.deepEqual(seen, [1, 2, 3, 4]);
    assert.deepEqual(seenPiped, [20, 40]);
    assert.deepEqual(reports, [
      'Connection "broker": a subscriber of events$ threw (boom); the monitor goes on.',
      'Connection "broker": a subscriber of events$ threw (boom); the monitor goes on.',
    ]);
    assert.deepEqual(escaped, []);
  });

  it("logs a throw in the user's own operator when the subscriber gave no error callback", async () => {
    const source = new Subject<number>();
    const { observable, reports } = guarded(source);
    const seen: number[] = [];
    observable
      .pipe(
        map((value) => {
          if (value === 2) throw new Error('bad map');
          return value;
        }),
      )
      .subscribe((value) => seen.push(value));
    for (const value of [1, 2, 3]) source.next(value);
    await settle();
    assert.deepEqual(seen, [1], 'an error ends that subscription, as in rxjs');
    assert.deepEqual(reports, ['Connection "broker": an operator or subscriber of events$ threw (bad map); the monitor goes on.']);
    assert.deepEqual(escaped, [], 'nothing reached rxjs\' rethrow timer');
  });

  it('logs an async subscriber that rejects, and ignores one that never settles', async () => {
    const source = new Subject<number>();
    const { observable, reports } = guarded(source);
    observable.pipe(share()).subscribe(async () => {
      throw new Error('later');
    });
    observable.subscribe({ next: () => new Promise(() => undefined) });
    source.next(1);
    await settle();
    assert.deepEqual(reports, ['Connection "broker": a subscriber of events$ rejected (later); the monitor goes on.']);
    assert.deepEqual(escaped, []);
  });

  it('guards the error and complete callbacks of an observer, and keeps its `this`', async () => {
    const reports: string[] = [];
    const report = (_error: unknown, message: string) => void reports.push(message);
    const erroring = new Subject<number>();
    GuardedObservable.of(erroring, { connection: 'broker', stream: 'events$', report }).subscribe({
      error() {
        throw new Error('in error');
      },
    });
    erroring.error(new Error('source failed'));
    const completing = new Subject<number>();
    const observer = {
      name: 'mine',
      complete(this: { name: string }) {
        throw new Error(`in complete of ${this.name}`);
      },
    };
    GuardedObservable.of(completing, { connection: 'broker', stream: 'clientChanges$()', report }).subscribe(observer);
    completing.complete();
    await settle();
    assert.deepEqual(reports, [
      'Connection "broker": the error callback of a subscriber of events$ threw (in error); the monitor goes on.',
      'Connection "broker": the complete callback of a subscriber of clientChanges$() threw (in complete of mine); the monitor goes on.',
    ]);
    assert.deepEqual(escaped, []);
  });

  it("leaves the operators' own subscribers untouched: unsubscribing downstream tears down upstream, firstValueFrom works", async () => {
    const source = new Subject<number>();
    const { observable } = guarded(source);
    const subscription = observable.pipe(filter(() => true), map((value) => value)).subscribe(() => undefined);
    assert.equal(source.observed, true);
    subscription.unsubscribe();
    assert.equal(source.observed, false, 'the chain let go of the source');
    const first = firstValueFrom(observable.pipe(filter((value) => value > 1), take(1)));
    source.next(1);
    source.next(2);
    assert.equal(await first, 2);
    assert.equal(source.observed, false);
  });
});
