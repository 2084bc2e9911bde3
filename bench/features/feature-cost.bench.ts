import type { BenchSettings, GoalResult, SectionResult } from '../kit/bench-section.js';
import { BenchChild } from '../kit/child.process.js';
import { markdownTable } from '../kit/markdown.table.js';
import { count, median, ms, ratio } from '../kit/stats.js';
import { WRK_DEFAULTS } from '../kit/wrk.runner.js';
import { FEATURE_VARIANTS } from './feature-cost.variants.js';
import type { FeatureCostResult } from './feature-cost.worker.js';

const SECTION = 'What the status page, publishers and OpenTelemetry cost';
const BEATING = 1_000;
const PROBED = 10;
/** A 2-core machine's noise is of the order of the differences measured: each row is the median of rounds, taken in turn. */
const ROUNDS = 3;

interface Row {
  cpuMicrosPerBeat: number;
  heapBytes: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

/** Each variant in fresh processes (one for the beats, one for /health), so heaps and JIT state do not carry over. */
export async function featureCostBench(settings: BenchSettings): Promise<SectionResult> {
  const started = Date.now();
  const names = Object.keys(FEATURE_VARIANTS);
  const runs = new Map<string, Array<{ beats: FeatureCostResult; probe: FeatureCostResult }>>(names.map((name) => [name, []]));
  const rounds = settings.quick ? 1 : ROUNDS;
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const run = (phase: string, connections: number, amount: number) =>
        BenchChild.run<FeatureCostResult>('features/feature-cost.worker.js', [name, phase, String(connections), String(amount)], {
          execArgv: ['--expose-gc'],
          timeoutMs: settings.scaleWindowMs + settings.wrkSeconds * 1_000 + 120_000,
        });
      runs.get(name)!.push({ beats: await run('beats', BEATING, settings.scaleWindowMs), probe: await run('probe', PROBED, settings.wrkSeconds) });
    }
  }
  const rows = names.map((name) => {
    const of = (pick: (run: { beats: FeatureCostResult; probe: FeatureCostResult }) => number) => median(runs.get(name)!.map(pick));
    const row: Row = {
      cpuMicrosPerBeat: of((r) => r.beats.cpuMicrosPerBeat!),
      heapBytes: of((r) => r.beats.heapBytes!),
      rps: of((r) => r.probe.wrk!.rps),
      p50Ms: of((r) => r.probe.wrk!.p50Ms),
      p99Ms: of((r) => r.probe.wrk!.p99Ms),
      errors: Math.max(...runs.get(name)!.map((r) => r.probe.wrk!.non2xx + r.probe.wrk!.socketErrors)),
    };
    return { name, row };
  });
  const off = rows.find((r) => r.name === 'off')!.row;
  const table = markdownTable(
    ['features on', `CPU per beat, µs (${count(BEATING)} connections)`, 'vs none', 'heap after GC, MiB', `/health req/s (${PROBED} connections)`, 'vs none', 'p50 ms', 'p99 ms', 'non-2xx + errors'],
    rows.map(({ name, row }) => [
      FEATURE_VARIANTS[name]!.label,
      row.cpuMicrosPerBeat.toFixed(1),
      ratio(row.cpuMicrosPerBeat, off.cpuMicrosPerBeat),
      (row.heapBytes / 2 ** 20).toFixed(1),
      row.rps.toFixed(0),
      ratio(row.rps, off.rps),
      ms(row.p50Ms),
      ms(row.p99Ms),
      String(row.errors),
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
  // No goal: the issue sets none, and on a 2-core machine the /health medians of identical code already differ by 25%.
  const goals: GoalResult[] = [];
  const markdown = [
    `Each figure is the median of ${rounds} rounds, the rows taken in turn in each round; the worst round's errors. One Nest app (Express) per row and phase, in a fresh process, with custom connections whose ping resolves at once (\`intervalMs\` 1 000, \`timeoutMs\` 500).`,
    `CPU per beat: user + system CPU of the whole app over a ${settings.scaleWindowMs / 1_000} s window, 3 s after start, divided by the beats answered in it,`,
    `with ${count(BEATING)} connections; heap used after GC at the end of that window. /health: wrk (${WRK_DEFAULTS.threads} threads, ${WRK_DEFAULTS.connections} connections) for ${settings.wrkSeconds} s on GET /health`,
    `(details \`status\`) of an app with ${PROBED} connections, after 2 s of warm-up. No transition happens in either window, so a publisher's cost per change is not in it.`,
    '',
    table,
  ].join('\n');
  return { title: SECTION, markdown, goals, seconds: (Date.now() - started) / 1_000 };
}
