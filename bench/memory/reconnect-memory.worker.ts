/**
 * Forced reconnect cycles of one connection in a Nest app (the test kit's TestApp): handle.forceReconnect(),
 * then wait for `up`, many times over; heap after GC and active handles before and after.
 * Usage: node --expose-gc reconnect-memory.worker.js <typeorm|tcp> <host> <port> <cycles>
 */
import { firstValueFrom, filter, timeout } from 'rxjs';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import type { ConnectionDefinition, ConnectionHandle } from '../../lib/index.js';
import { activeHandles, TestApp } from '../../test/kit/test-app.js';
import { tellParent } from '../kit/child.process.js';
import { heapAfterGc } from '../kit/heap.js';

export interface ReconnectMemoryResult {
  kind: string;
  cycles: number;
  /** Wall time of the measured cycles, ms. */
  elapsedMs: number;
  heapBeforeBytes: number;
  /** After half the cycles: growth in the second half tells a leak (it goes on) from one-off warm-up growth. */
  heapHalfwayBytes: number;
  heapAfterBytes: number;
  handlesBefore: Record<string, number>;
  handlesAfter: Record<string, number>;
}

const WARMUP_CYCLES = 20;


function definitionFor(kind: string, host: string, port: number): ConnectionDefinition {
  // Default heartbeat (30 s): no beat is in flight when handles are counted.
  if (kind === 'tcp') return { name: 'conn', kind: 'tcp', host, port, mode: 'hold' };
  const dataSource = new DataSource({ type: 'postgres', host, port, username: 'postgres', database: 'postgres', logging: false });
  return { name: 'conn', kind: 'typeorm', dataSource };
}

async function cycle(handle: ConnectionHandle): Promise<void> {
  const up = firstValueFrom(
    handle.events$.pipe(
      filter((event) => event.type === 'state' && event.to === 'up'),
      timeout({ first: 10_000, with: () => Promise.reject(new Error(`no reconnect within 10 s: ${JSON.stringify(handle.snapshot())}`)) }),
    ),
  );
  handle.forceReconnect('bench cycle');
  await up;
}

async function measure(kind: string, host: string, port: number, cycles: number): Promise<ReconnectMemoryResult> {
  const app = await TestApp.start({ health: { connections: [definitionFor(kind, host, port)] } });
  try {
    await app.waitForState('conn', 'up', 10_000);
    const handle = app.registry.get('conn');
    for (let i = 0; i < WARMUP_CYCLES; i++) await cycle(handle);
    await sleep(200);
    const heapBeforeBytes = await heapAfterGc();
    const handlesBefore = activeHandles();
    const startedAt = performance.now();
    let measuring = 0;
    for (let i = 0; i < Math.floor(cycles / 2); i++) await cycle(handle);
    const gcStarted = performance.now();
    const heapHalfwayBytes = await heapAfterGc();
    measuring += performance.now() - gcStarted;
    for (let i = Math.floor(cycles / 2); i < cycles; i++) await cycle(handle);
    const elapsedMs = performance.now() - startedAt - measuring;
    await sleep(200);
    const heapAfterBytes = await heapAfterGc();
    const handlesAfter = activeHandles();
    return { kind, cycles, elapsedMs, heapBeforeBytes, heapHalfwayBytes, heapAfterBytes, handlesBefore, handlesAfter };
  } finally {
    await app.close();
  }
}

try {
  const [kind = 'typeorm', host = '127.0.0.1', port = '5432', cycles = '1000'] = process.argv.slice(2);
  await tellParent<ReconnectMemoryResult>({ type: 'result', value: await measure(kind, host, Number(port), Number(cycles)) });
} catch (error) {
  await tellParent({ type: 'error', message: error instanceof Error ? error.stack ?? error.message : String(error) });
}
process.disconnect?.();
