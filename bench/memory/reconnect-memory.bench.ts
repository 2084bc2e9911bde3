import type { PostgresServer } from '../../test/kit/postgres.server.js';
import type { BenchSettings, GoalResult, SectionResult } from '../kit/bench-section.js';
import { BenchChild } from '../kit/child.process.js';
import { markdownTable } from '../kit/markdown.table.js';
import { ms } from '../kit/stats.js';
import type { ReconnectMemoryResult } from './reconnect-memory.worker.js';

const SECTION = 'Memory stability';
const KINDS = [
  { kind: 'typeorm', label: 'typeorm (PostgreSQL DataSource: destroy + initialize)' },
  { kind: 'tcp', label: "tcp, mode 'hold' (PostgreSQL's port)" },
];

function kib(bytes: number): string {
  return `${bytes >= 0 ? '+' : ''}${(bytes / 1_024).toFixed(0)} KiB`;
}

function handleList(handles: Record<string, number>): string {
  return Object.entries(handles)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([type, n]) => `${type} ${n}`)
    .join(', ');
}

/** Types whose count differs between the two snapshots, as "type before -> after". */
function handleChanges(before: Record<string, number>, after: Record<string, number>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((type) => (before[type] ?? 0) !== (after[type] ?? 0))
    .map((type) => `${type} ${before[type] ?? 0} -> ${after[type] ?? 0}`);
}

export async function reconnectMemoryBench(postgres: PostgresServer, settings: BenchSettings): Promise<SectionResult> {
  const started = Date.now();
  const results: ReconnectMemoryResult[] = [];
  for (const { kind } of KINDS) {
    results.push(
      await BenchChild.run<ReconnectMemoryResult>(
        'memory/reconnect-memory.worker.js',
        [kind, postgres.host, String(postgres.port), String(settings.reconnectCycles)],
        { execArgv: ['--expose-gc'], timeoutMs: 600_000 },
      ),
    );
  }
  const rows = results.map((r) => {
    const delta = r.heapAfterBytes - r.heapBeforeBytes;
    const changes = handleChanges(r.handlesBefore, r.handlesAfter);
    return [
      KINDS.find((k) => k.kind === r.kind)!.label,
      String(r.cycles),
      ms(r.elapsedMs / r.cycles),
      (r.heapBeforeBytes / 2 ** 20).toFixed(2),
      (r.heapAfterBytes / 2 ** 20).toFixed(2),
      kib(delta),
      kib(r.heapAfterBytes - r.heapHalfwayBytes),
      handleList(r.handlesBefore),
      changes.length ? changes.join(', ') : 'same',
    ];
  });
  const table = markdownTable(
    ['connection', 'cycles', 'ms per cycle', 'heap before, MiB', 'heap after, MiB', 'heap delta', 'of which in the second half', 'active handles before', 'handles after'],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
  );
  const goals: GoalResult[] = results.flatMap((r) => {
    const delta = r.heapAfterBytes - r.heapBeforeBytes;
    const changes = handleChanges(r.handlesBefore, r.handlesAfter);
    return [
      { section: SECTION, goal: `${r.kind}: heap delta < 1 MB over ${r.cycles} reconnects`, figure: `${(delta / 1_024).toFixed(0)} KiB`, met: delta < 1_000_000 },
      { section: SECTION, goal: `${r.kind}: active handles back to the start`, figure: changes.length ? changes.join(', ') : 'same', met: changes.length === 0 },
    ];
  });
  const markdown = [
    `One connection in a Nest app (the test kit's TestApp, in a fresh process with \`--expose-gc\`) against the bench PostgreSQL: \`handle.forceReconnect()\`,`,
    `then wait for \`up\`, ${settings.reconnectCycles} times after ${20} warm-up cycles. Heap used after GC and \`process.getActiveResourcesInfo()\` by type, 200 ms after the`,
    `warm-up and 200 ms after the last cycle, and the heap once more halfway: growth that goes on in the second half is a leak, growth that`,
    `stops is one-off (code, caches). Default heartbeat (30 s), so no beat is in flight when they are counted.`,
    '',
    table,
  ].join('\n');
  return { title: SECTION, markdown, goals, seconds: (Date.now() - started) / 1_000 };
}
