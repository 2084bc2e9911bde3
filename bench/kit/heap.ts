import { setTimeout as sleep } from 'node:timers/promises';

/** Heap in use after a full collection; the process must run with --expose-gc. */
export async function heapAfterGc(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  // Twice, with a turn of the loop between, so objects freed by the first pass's finalizers go too.
  gc();
  await sleep(10);
  gc();
  return process.memoryUsage().heapUsed;
}
