/**
 * N custom connections whose ping resolves at once, beating every second in this one process, measured
 * from inside: heap per connection after GC, CPU share of one core, event-loop lag. Run with --expose-gc.
 * Usage: node --expose-gc engine-scale.worker.js <connections> <windowMs>
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAdapter } from '../../lib/adapters/create-adapter.js';
import { reportToConsole } from '../../lib/core/user-callback.js';
import { systemClock } from '../../lib/core/clock.js';
import { ConnectionMonitor } from '../../lib/core/connection-monitor.js';
import { resolveMonitorOptions } from '../../lib/core/resolve-monitor-options.js';
import { tellParent } from '../kit/child.process.js';
import { heapAfterGc } from '../kit/heap.js';

export interface EngineScaleResult {
  connections: number;
  heapBeforeBytes: number;
  heapRunningBytes: number;
  heapPerConnectionBytes: number;
  rssBytes: number;
  windowMs: number;
  /** Heartbeats per second over the window (pings answered). */
  beatsPerSecond: number;
  /** CPU time (user + system) over wall time, in % of one core. */
  cpuPercent: number;
  /** Resolution of the lag histogram, ms: its timer's own period, already subtracted from the lags. */
  lagResolutionMs: number;
  /** Event-loop lag over the window: how late the histogram's timer fired, ms. */
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
}

const LAG_RESOLUTION_MS = 10;
const WARMUP_MS = 3_000;


async function measure(connections: number, windowMs: number): Promise<EngineScaleResult> {
  let pings = 0;
  // One shared function: the user's own closure is not the package's cost.
  const ping = () => {
    pings += 1;
    return Promise.resolve();
  };
  const heapBeforeBytes = await heapAfterGc();
  const monitors: ConnectionMonitor[] = [];
  for (let i = 0; i < connections; i++) {
    const name = `custom-${i}`;
    // As the module does per connection: options resolved and checked, adapter built, monitor started.
    const options = resolveMonitorOptions(name, { heartbeat: { intervalMs: 1_000, timeoutMs: 500 } });
    const monitor = new ConnectionMonitor(name, createAdapter({ name, kind: 'custom', ping }, options, { clock: systemClock, report: reportToConsole }), options);
    monitor.start();
    monitors.push(monitor);
  }
  await sleep(WARMUP_MS);
  const heapRunningBytes = await heapAfterGc();
  const rssBytes = process.memoryUsage().rss;

  const histogram = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  const pingsBefore = pings;
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  histogram.enable();
  await sleep(windowMs);
  histogram.disable();
  const elapsedMs = performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  const lag = (p: number) => Math.max(0, histogram.percentile(p) / 1e6 - LAG_RESOLUTION_MS);

  await Promise.all(monitors.map((monitor) => monitor.close(1_000)));
  return {
    connections,
    heapBeforeBytes,
    heapRunningBytes,
    heapPerConnectionBytes: connections ? (heapRunningBytes - heapBeforeBytes) / connections : 0,
    rssBytes,
    windowMs: elapsedMs,
    beatsPerSecond: ((pings - pingsBefore) / elapsedMs) * 1_000,
    cpuPercent: ((cpu.user + cpu.system) / 1_000 / elapsedMs) * 100,
    lagResolutionMs: LAG_RESOLUTION_MS,
    lagP50Ms: lag(50),
    lagP99Ms: lag(99),
    lagMaxMs: Math.max(0, histogram.max / 1e6 - LAG_RESOLUTION_MS),
  };
}

try {
  const [connections = '1000', windowMs = '10000'] = process.argv.slice(2);
  await tellParent<EngineScaleResult>({ type: 'result', value: await measure(Number(connections), Number(windowMs)) });
} catch (error) {
  await tellParent({ type: 'error', message: error instanceof Error ? error.stack ?? error.message : String(error) });
}
process.disconnect?.();
