import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextLoop } from 'node:timers/promises';
import { abortable } from './abortable.js';

/** Rejections nobody handled while `run` went on (an app on Node's defaults exits on the first). */
async function unhandledDuring(run: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const record = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', record);
  try {
    await run();
    await nextLoop();
  } finally {
    process.off('unhandledRejection', record);
  }
  return seen;
}

describe('abortable', () => {
  it('rejects with the reason at once on a signal already aborted, and the promise rejecting later goes unseen', async () => {
    const controller = new AbortController();
    controller.abort(new Error('deadline passed'));
    const seen = await unhandledDuring(async () => {
      let fail!: (error: Error) => void;
      const late = new Promise<never>((_resolve, reject) => (fail = reject));
      await assert.rejects(abortable(late, controller.signal), /deadline passed/);
      // The client gives up later (its connection closed): nobody waits for it any more.
      fail(new Error('Connection is closed.'));
    });
    assert.deepEqual(seen, [], 'no unhandled rejection');
  });

  it('gives up when the signal aborts; the promise rejecting after that goes unseen', async () => {
    const controller = new AbortController();
    const seen = await unhandledDuring(async () => {
      let fail!: (error: Error) => void;
      const late = new Promise<never>((_resolve, reject) => (fail = reject));
      const waiting = abortable(late, controller.signal);
      controller.abort(new Error('deadline passed'));
      await assert.rejects(waiting, /deadline passed/);
      fail(new Error('Connection is closed.'));
    });
    assert.deepEqual(seen, []);
  });

  it('passes the value or the rejection of a promise that settles first', async () => {
    const signal = new AbortController().signal;
    assert.equal(await abortable(Promise.resolve(7), signal), 7);
    await assert.rejects(abortable(Promise.reject(new Error('refused')), signal), /refused/);
  });
});
