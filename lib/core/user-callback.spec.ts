import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { callUser, throttleReport, type CallbackFailure } from './user-callback.js';

/** Calls `fn` through callUser and collects what it reported after the promise jobs have run. */
async function outcome(fn: () => unknown): Promise<Array<[string, CallbackFailure]>> {
  const failures: Array<[string, CallbackFailure]> = [];
  callUser(fn, (error, how) => failures.push([(error as Error).message, how]));
  await turn();
  return failures;
}

describe('callUser', () => {
  it('reports a synchronous throw as threw and a rejection as rejected, once each', async () => {
    assert.deepEqual(await outcome(() => {
      throw new Error('sync');
    }), [['sync', 'threw']]);
    assert.deepEqual(await outcome(() => Promise.reject(new Error('async'))), [['async', 'rejected']]);
    assert.deepEqual(await outcome(async () => {
      throw new Error('async function');
    }), [['async function', 'rejected']]);
  });

  it('treats a thenable whose then() throws as a rejection', async () => {
    const thenable = {
      then() {
        throw new Error('bad then');
      },
    };
    assert.deepEqual(await outcome(() => thenable), [['bad then', 'rejected']]);
  });

  it('reports nothing for a value, a resolved promise, or a promise that never settles', async () => {
    assert.deepEqual(await outcome(() => 42), []);
    assert.deepEqual(await outcome(() => Promise.resolve()), []);
    assert.deepEqual(await outcome(() => new Promise(() => undefined)), []);
  });
});

describe('throttleReport', () => {
  it('writes at most one line per period and says how many it left out', () => {
    let now = 0;
    const lines: string[] = [];
    const report = throttleReport((_error, message) => void lines.push(message), 60_000, () => now);
    for (; now < 150_000; now += 1_000) report(new Error('x'), 'failed');
    assert.deepEqual(lines, [
      'failed',
      'failed (59 more failure(s) of it since the last line were not logged)',
      'failed (59 more failure(s) of it since the last line were not logged)',
    ]);
  });
});
