/**
 * One Nest app (Express, on loopback) holding N custom connections whose ping resolves at once, with one
 * variant of the module's options, measured from inside the process:
 * - phase `beats`: CPU per heartbeat and heap after GC while the connections beat every second;
 * - phase `probe`: GET /health under wrk.
 * Usage: node --expose-gc feature-cost.worker.js <variant> <beats|probe> <connections> <windowMs|wrkSeconds>
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionHealthModule } from '../../lib/index.js';
import { tellParent } from '../kit/child.process.js';
import { heapAfterGc } from '../kit/heap.js';
import { runWrk, WRK_DEFAULTS, type WrkResult } from '../kit/wrk.runner.js';
import { FEATURE_VARIANTS } from './feature-cost.variants.js';

export interface FeatureCostResult {
  variant: string;
  connections: number;
  /** phase beats: heartbeats answered per second, CPU (user + system) per beat in µs, heap used after GC in bytes. */
  beatsPerSecond?: number;
  cpuMicrosPerBeat?: number;
  heapBytes?: number;
  /** phase probe: wrk on /health. */
  wrk?: WrkResult;
}

const WARMUP_MS = 3_000;

async function measure(variantName: string, phase: string, connections: number, amount: number): Promise<FeatureCostResult> {
  const variant = FEATURE_VARIANTS[variantName];
  if (!variant) throw new Error(`unknown variant "${variantName}"; choose from ${Object.keys(FEATURE_VARIANTS).join(', ')}`);
  const { healthController, ...options } = { ...variant.options, ...(await variant.prepare?.()) };
  let pings = 0;
  // One shared function: the user's own closure is not the package's cost.
  const ping = () => {
    pings += 1;
    return Promise.resolve();
  };
  const definitions = Array.from({ length: connections }, (_, i) => ({
    name: `custom-${i}`,
    kind: 'custom' as const,
    ping,
    heartbeat: { intervalMs: 1_000, timeoutMs: 500 },
  }));

  @Module({ imports: [ConnectionHealthModule.forRoot({ ...options, connections: definitions, ...(healthController ? { healthController } : {}) })] })
  class FeatureCostModule {}

  const app = await NestFactory.create(FeatureCostModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  // A browser's EventSource: reads the stream as it comes (in this process, so its reading counts too, a little).
  const viewer = variant.watch ? http.get(`http://127.0.0.1:${port}/health/ui/events`, (response) => response.resume()) : undefined;
  try {
    await sleep(WARMUP_MS);
    const result: FeatureCostResult = { variant: variantName, connections };
    if (phase === 'beats') {
      const pingsBefore = pings;
      const cpuBefore = process.cpuUsage();
      const startedAt = performance.now();
      await sleep(amount);
      const elapsedMs = performance.now() - startedAt;
      const cpu = process.cpuUsage(cpuBefore);
      const beats = pings - pingsBefore;
      result.beatsPerSecond = (beats / elapsedMs) * 1_000;
      result.cpuMicrosPerBeat = (cpu.user + cpu.system) / Math.max(1, beats);
      result.heapBytes = await heapAfterGc();
    } else {
      const url = `http://127.0.0.1:${port}/health`;
      await runWrk(url, { ...WRK_DEFAULTS, durationS: 2 }); // JIT warm-up
      result.wrk = await runWrk(url, { ...WRK_DEFAULTS, durationS: amount });
    }
    return result;
  } finally {
    viewer?.destroy();
    await app.close();
  }
}

try {
  const [variant = 'off', phase = 'beats', connections = '1000', amount = '10000'] = process.argv.slice(2);
  await tellParent<FeatureCostResult>({ type: 'result', value: await measure(variant, phase, Number(connections), Number(amount)) });
} catch (error) {
  await tellParent({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
}
process.disconnect?.();
