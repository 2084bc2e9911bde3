import type { BenchSettings, GoalResult, SectionResult } from '../kit/bench-section.js';
import { BenchChild } from '../kit/child.process.js';
import { markdownTable } from '../kit/markdown.table.js';
import { count, ms, ratio } from '../kit/stats.js';
import { WRK_DEFAULTS } from '../kit/wrk.runner.js';
import { FEATURE_VARIANTS } from './feature-cost.variants.js';
import type { FeatureCostResult } from './feature-cost.worker.js';

const SECTION = 'What the status page, publishers and OpenTelemetry cost';
const BEATING = 1_000;
const PROBED = 10;

/** Each variant in fresh processes (one for the beats, one for /health), so heaps and JIT state do not carry over. */
export async function featureCostBench(settings: BenchSettings): Promise<SectionResult> {
  const started = Date.now();
  const rows: Array<{ name: string; beats: FeatureCostResult; probe: FeatureCostResult }> = [];
  for (const name of Object.keys(FEATURE_VARIANTS)) {
    const run = (phase: string, connections: number, amount: number) =>
      BenchChild.run<FeatureCostResult>('features/feature-cost.worker.js', [name, phase, String(connections), String(amount)], {
        execArgv: ['--expose-gc'],
        timeoutMs: settings.scaleWindowMs + settings.wrkSeconds * 1_000 + 120_000,
      });
    rows.push({ name, beats: await run('beats', BEATING, settings.scaleWindowMs), probe: await run('probe', PROBED, settings.wrkSeconds) });
  }
  const off = rows.find((row) => row.name === 'off')!;
  const table = markdownTable(
    ['features on', `CPU per beat, µs (${count(BEATING)} connections)`, 'vs none', 'heap after GC, MiB', `/health req/s (${PROBED} connections)`, 'vs none', 'p50 ms', 'p99 ms', 'non-2xx + errors'],
    rows.map(({ name, beats, probe }) => [
      FEATURE_VARIANTS[name]!.label,
      beats.cpuMicrosPerBeat!.toFixed(1),
      ratio(beats.cpuMicrosPerBeat!, off.beats.cpuMicrosPerBeat!),
      (beats.heapBytes! / 2 ** 20).toFixed(1),
      probe.wrk!.rps.toFixed(0),
      ratio(probe.wrk!.rps, off.probe.wrk!.rps),
      ms(probe.wrk!.p50Ms),
      ms(probe.wrk!.p99Ms),
      String(probe.wrk!.non2xx + probe.wrk!.socketErrors),
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
  const goals: GoalResult[] = rows
    .filter((row) => row.name !== 'off')
    .map((row) => ({
      section: SECTION,
      goal: `${row.name}: /health >= 0.9x of none`,
      figure: ratio(row.probe.wrk!.rps, off.probe.wrk!.rps),
      met: row.probe.wrk!.rps >= 0.9 * off.probe.wrk!.rps,
    }));
  const markdown = [
    `One Nest app (Express) per row and phase, in a fresh process, with custom connections whose ping resolves at once (\`intervalMs\` 1 000, \`timeoutMs\` 500).`,
    `CPU per beat: user + system CPU of the whole app over a ${settings.scaleWindowMs / 1_000} s window, 3 s after start, divided by the beats answered in it,`,
    `with ${count(BEATING)} connections; heap used after GC at the end of that window. /health: wrk (${WRK_DEFAULTS.threads} threads, ${WRK_DEFAULTS.connections} connections) for ${settings.wrkSeconds} s on GET /health`,
    `(details \`status\`) of an app with ${PROBED} connections, after 2 s of warm-up. No transition happens in either window, so a publisher's cost per change is not in it.`,
    '',
    table,
  ].join('\n');
  return { title: SECTION, markdown, goals, seconds: (Date.now() - started) / 1_000 };
}
