import type { BenchSettings, GoalResult, SectionResult } from '../kit/bench-section.js';
import { BenchChild } from '../kit/child.process.js';
import { markdownTable } from '../kit/markdown.table.js';
import { count, ms } from '../kit/stats.js';
import type { EngineScaleResult } from './engine-scale.worker.js';

const SECTION = 'Engine scale';
const SIZES = [0, 1_000, 10_000];

/** Each size in a fresh process, so heaps and JIT state do not carry over. */
export async function engineScaleBench(settings: BenchSettings): Promise<SectionResult> {
  const started = Date.now();
  const results: EngineScaleResult[] = [];
  for (const size of SIZES) {
    results.push(
      await BenchChild.run<EngineScaleResult>('scale/engine-scale.worker.js', [String(size), String(settings.scaleWindowMs)], {
        execArgv: ['--expose-gc'],
        timeoutMs: settings.scaleWindowMs + 120_000,
      }),
    );
  }
  const rows = results.map((r) => [
    count(r.connections),
    r.beatsPerSecond.toFixed(0),
    r.connections ? count(r.heapPerConnectionBytes) : '',
    `${(r.heapRunningBytes / 2 ** 20).toFixed(1)}`,
    `${(r.rssBytes / 2 ** 20).toFixed(0)}`,
    r.cpuPercent.toFixed(1),
    ms(r.lagP50Ms),
    ms(r.lagP99Ms),
    ms(r.lagMaxMs),
  ]);
  const table = markdownTable(
    ['connections', 'beats/s', 'heap per connection, bytes', 'heap used after GC, MiB', 'RSS, MiB', 'CPU, % of one core', 'lag p50 ms', 'lag p99 ms', 'lag max ms'],
    rows,
    ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
  const at10k = results.find((r) => r.connections === 10_000)!;
  const worstHeap = Math.max(...results.filter((r) => r.connections).map((r) => r.heapPerConnectionBytes));
  const goals: GoalResult[] = [
    { section: SECTION, goal: '<= 2 KB heap per connection', figure: `${count(worstHeap)} bytes (worst size)`, met: worstHeap <= 2_048 },
    { section: SECTION, goal: '< 5% of a core at 10,000', figure: `${at10k.cpuPercent.toFixed(1)}%`, met: at10k.cpuPercent < 5 },
    { section: SECTION, goal: 'event-loop lag p99 < 20 ms at 10,000', figure: `${ms(at10k.lagP99Ms)} ms`, met: at10k.lagP99Ms < 20 },
  ];
  const markdown = [
    `Custom connections whose ping resolves at once, \`intervalMs\` 1 000 (default jitter 0.1), \`timeoutMs\` 500, built as the module builds them`,
    `(options resolved and checked, adapter from createAdapter, one ConnectionMonitor each) and started together, in a fresh Node process per size`,
    `with \`--expose-gc\`. Heap per connection: heap used after GC, 3 s after start, minus the same before any monitor existed.`,
    `CPU (user + system over wall time) and event-loop lag (perf_hooks monitorEventLoopDelay, ${results[0]!.lagResolutionMs} ms resolution, which is subtracted)`,
    `over a ${settings.scaleWindowMs / 1_000} s window after that. The 0 row is the idle process.`,
    '',
    table,
    '',
    `At 10,000 connections each beat costs about ${perBeatMicros(at10k).toFixed(0)} µs of one core (CPU share over beats per second): a timer,`,
    'an AbortController with its deadline timer, a promise chain through the adapter, and a new immutable snapshot. Under 5% of a core',
    'at 10,000 beats per second would allow 5 µs per beat, which would take batching the beats of many connections on one timer',
    'instead of one timer and one promise chain each; the engine does not do that yet.',
  ].join('\n');
  return { title: SECTION, markdown, goals, seconds: (Date.now() - started) / 1_000 };
}

/** Microseconds of one core per heartbeat. */
function perBeatMicros(result: EngineScaleResult): number {
  return ((result.cpuPercent / 100) * 1_000_000) / Math.max(1, result.beatsPerSecond);
}
