/**
 * Runs the whole suite: the real servers start once for the run, then every spec file runs in a `node --test`
 * of its own, one at a time (some of them kill the shared servers), and the servers stop.
 *
 * One process per file, and no --test-force-exit: with that flag Node 20 sometimes dropped a file's last test
 * reports without a word, so a run counted fewer tests and still passed. What the flag was for, a file that
 * does not end, is caught here instead: a file still running after FILE_LIMIT_MS is killed and fails the
 * run by name. Each file's own summary is read back, so the run ends with totals it can vouch for.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childrenOf } from './kit/process.util.js';
import { startSharedServers } from './kit/shared-servers.js';

/** The longest file takes about 2 minutes on a busy 2-core machine; a file past this does not end by itself. */
const FILE_LIMIT_MS = 10 * 60_000;
/** After SIGTERM (the kits remove their servers on it), how long a file gets before SIGKILL. */
const TERM_GRACE_MS = 5_000;
const COUNTERS = ['tests', 'pass', 'fail', 'cancelled', 'skipped', 'todo'] as const;
type Counts = Record<(typeof COUNTERS)[number], number>;

const buildRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function specs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : specs(full);
    return /\.(e2e-)?spec\.js$/.test(entry.name) ? [full] : [];
  });
}

/** The file's process and everything it started (servers, namespaces' processes), deepest last. */
function processTree(pid: number): number[] {
  return [pid, ...childrenOf(pid).flatMap(processTree)];
}

/** The summary `node --test` ends its TAP with (`# tests 12` ...), or undefined when it never got there. */
function readCounts(tapFile: string): Counts | undefined {
  let tap: string;
  try {
    tap = readFileSync(tapFile, 'utf8');
  } catch {
    return undefined;
  }
  const counts = {} as Counts;
  for (const name of COUNTERS) {
    const match = new RegExp(`^# ${name} (\\d+)$`, 'm').exec(tap);
    if (!match) return undefined;
    counts[name] = Number(match[1]);
  }
  return counts;
}

function signal(pids: readonly number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // Gone already.
    }
  }
}

interface FileResult {
  file: string;
  counts?: Counts;
  /** Why the file failed though no test did: it was killed, or it ended without its summary. */
  problem?: string;
}

async function runFile(file: string, env: NodeJS.ProcessEnv, tapFile: string): Promise<FileResult> {
  // The console gets the usual report; the TAP copy is where the counts are read from.
  const reporter = process.stdout.isTTY ? 'spec' : 'tap';
  const args = ['--test', `--test-reporter=${reporter}`, '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tapFile}`];
  const child = spawn(process.execPath, [...args, ...process.argv.slice(2), file], { stdio: 'inherit', env });
  let killed = false;
  const limit = setTimeout(() => {
    killed = true;
    const tree = processTree(child.pid as number);
    signal(tree, 'SIGTERM');
    setTimeout(() => signal([...tree, ...processTree(child.pid as number)], 'SIGKILL'), TERM_GRACE_MS).unref();
  }, FILE_LIMIT_MS);
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  clearTimeout(limit);
  const name = path.relative(buildRoot, file);
  const counts = readCounts(tapFile);
  if (killed) return { file: name, counts, problem: `still running after ${FILE_LIMIT_MS / 1000} s: killed` };
  if (!counts) return { file: name, problem: `ended (exit code ${exitCode}) without its test summary` };
  if (exitCode !== 0 && counts.fail === 0) return { file: name, counts, problem: `exit code ${exitCode} though no test failed` };
  return { file: name, counts };
}

const files = [...specs(path.join(buildRoot, 'lib')), ...specs(path.join(buildRoot, 'test')), ...specs(path.join(buildRoot, 'sample'))];
const tapDir = mkdtempSync(path.join(os.tmpdir(), 'ch-test-run-'));
const servers = await startSharedServers();
const results: FileResult[] = [];
try {
  const env = { ...process.env, ...servers.env };
  for (const [i, file] of files.entries()) results.push(await runFile(file, env, path.join(tapDir, `${i}.tap`)));
} finally {
  await servers.stop();
  rmSync(tapDir, { recursive: true, force: true });
}

const total = Object.fromEntries(COUNTERS.map((name) => [name, results.reduce((sum, { counts }) => sum + (counts?.[name] ?? 0), 0)]));
const failedFiles = results.filter(({ counts, problem }) => problem || counts?.fail || counts?.cancelled);
console.log(`\n# the whole run: ${files.length} files, ${COUNTERS.map((name) => `${name} ${total[name]}`).join(', ')}`);
for (const { file, counts, problem } of failedFiles) {
  console.log(`# FAILED ${file}: ${problem ?? `${counts?.fail} failed, ${counts?.cancelled} cancelled`}`);
}
process.exit(failedFiles.length ? 1 : 0);
