/**
 * `npm run bench`: every benchmark of issue 8 in one run, side by side, then BENCHMARKS.md.
 *   node .build/bench/run.js [health] [detection] [scale] [memory] [features] [--quick] [--kind=LABEL]... [--out=FILE]
 * With no section named, all run and BENCHMARKS.md (at the package root) is rewritten; a partial or
 * --quick run (shorter loads and fewer trials, to check the scripts work) only prints, unless --out is given.
 * --kind=dovecot runs only the detection kinds whose label contains it, --fault=kick only the faults whose name does.
 * Progress goes to stderr, the Markdown to stdout.
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PostgresServer } from '../test/kit/postgres.server.js';
import { detectionBench } from './detection/detection.bench.js';
import { featureCostBench } from './features/feature-cost.bench.js';
import { healthProbeBench } from './health/health-probe.bench.js';
import { startBenchPostgres } from './kit/bench-postgres.js';
import { benchSettings, type SectionResult } from './kit/bench-section.js';
import { machineInfo } from './kit/machine.info.js';
import { markdownTable } from './kit/markdown.table.js';
import { reconnectMemoryBench } from './memory/reconnect-memory.bench.js';
import { engineScaleBench } from './scale/engine-scale.bench.js';

const SECTIONS = ['health', 'detection', 'scale', 'memory', 'features'] as const;
type Section = (typeof SECTIONS)[number];

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outArg = args.find((arg) => arg.startsWith('--out='))?.slice('--out='.length);
const listed = (option: string) => args.filter((arg) => arg.startsWith(`--${option}=`)).map((arg) => arg.slice(option.length + 3));
const kindFilter = listed('kind');
const faultFilter = listed('fault');
const named = args.filter((arg) => !arg.startsWith('--'));
for (const name of named) {
  if (!SECTIONS.includes(name as Section)) throw new Error(`unknown section "${name}"; choose from ${SECTIONS.join(', ')}`);
}
const chosen: Section[] = named.length ? (named as Section[]) : [...SECTIONS];
const complete = chosen.length === SECTIONS.length && !quick && kindFilter.length === 0 && faultFilter.length === 0;
const outFile = outArg ? path.resolve(outArg) : complete ? path.join(packageRoot, 'BENCHMARKS.md') : undefined;

const settings = benchSettings(quick, kindFilter, faultFilter);
const machine = machineInfo();
const started = Date.now();
const results: SectionResult[] = [];
const log = (line: string) => console.error(`[bench ${((Date.now() - started) / 1_000).toFixed(0)} s] ${line}`);

let postgres: PostgresServer | undefined;
try {
  if (chosen.includes('health') || chosen.includes('memory')) {
    log('starting PostgreSQL (pg_stat_statements)');
    postgres = await startBenchPostgres();
  }
  const run: Record<Section, () => Promise<SectionResult>> = {
    health: () => healthProbeBench(postgres!, settings),
    detection: () => detectionBench(settings),
    scale: () => engineScaleBench(settings),
    memory: () => reconnectMemoryBench(postgres!, settings),
    features: () => featureCostBench(settings),
  };
  for (const section of chosen) {
    log(`${section}: running`);
    const sectionStarted = Date.now();
    try {
      const result = await run[section]();
      results.push(result);
      log(`${section}: done in ${result.seconds.toFixed(0)} s`);
    } catch (error) {
      // One broken section must not cost the figures of the others; the report says what failed.
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      log(`${section}: FAILED: ${message}`);
      const seconds = (Date.now() - sectionStarted) / 1_000;
      results.push({ title: section, markdown: `**This section failed:**\n\n\`\`\`\n${message}\n\`\`\``, goals: [{ section, goal: 'section ran', figure: 'failed', met: false }], seconds });
    }
  }
} finally {
  await postgres?.stop();
}

const totalSeconds = (Date.now() - started) / 1_000;
const goals = results.flatMap((r) => r.goals);
const goalTable = markdownTable(
  ['section', 'goal', 'measured', 'met'],
  goals.map((g) => [g.section, g.goal, g.figure, g.met ? 'yes' : '**MISSED**']),
);
const document = [
  '# Benchmarks',
  '',
  `Measured by \`npm run bench\` (bench/run.ts) on ${machine.date}${quick ? ', **quick mode (shorter loads, fewer trials): not figures to quote**' : ''}.`,
  `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB memory, ${machine.os}, Node ${machine.node}.`,
  `Load average (1 min): ${machine.loadAtStart.toFixed(2)} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end; the whole run took ${(totalSeconds / 60).toFixed(1)} min.`,
  'Every comparison is made within this one run, side by side, so read the ratios rather than the absolute figures.',
  'A goal that is missed says so, with its figure; nothing was tuned to pass.',
  '',
  '## Goals',
  '',
  goalTable,
  '',
  ...results.flatMap((r, i) => [`## ${i + 1}. ${r.title}`, '', r.markdown, '', `Section time: ${r.seconds.toFixed(0)} s.`, '']),
  '## Run it',
  '',
  '```sh',
  'npm run bench                                  # everything, rewrites BENCHMARKS.md (about 10 minutes)',
  'npm run bench -- health scale                  # some sections, printed only',
  'npm run bench -- --quick                       # shorter loads and fewer trials, to check the scripts work',
  'npm run bench -- detection --kind=dovecot      # detection rows of some kinds only',
  'npm run bench -- detection --kind=redis --fault=kick   # and of some faults only (a part of the name, as for --kind)',
  '```',
  '',
  'It installs the servers it needs (PostgreSQL, dovecot, ActiveMQ, RabbitMQ, redis-server, nats-server, mosquitto and wrk from Debian\'s packages, as root), builds, then runs',
  '`node .build/bench/run.js`. Each section runs the code under test in a process of its own (the app under wrk, the scale',
  'and memory workers) or in the driver (detection), against throwaway servers from the test kit, stopped at the end.',
  '',
].join('\n');

console.log(document);
if (outFile) {
  await writeFile(outFile, document);
  log(`wrote ${path.relative(process.cwd(), outFile) || outFile}`);
}
log(`finished in ${(totalSeconds / 60).toFixed(1)} min`);
