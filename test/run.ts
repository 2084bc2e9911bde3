/**
 * Runs the whole suite: the real servers start once for the run, every spec runs in `node --test`
 * (one file at a time, since some of them kill the shared servers), then the servers stop.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSharedServers } from './kit/shared-servers.js';

const buildRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function specs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : specs(full);
    return /\.(e2e-)?spec\.js$/.test(entry.name) ? [full] : [];
  });
}

const files = [...specs(path.join(buildRoot, 'lib')), ...specs(path.join(buildRoot, 'test')), ...specs(path.join(buildRoot, 'sample'))];
const servers = await startSharedServers();
let code = 1;
try {
  // --test-force-exit: a spec file whose tests all passed has been seen, rarely and only on a loaded machine,
  // to spin in Node's exit clean-up (stomp.e2e-spec); leaks are asserted by the tests themselves.
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-force-exit', ...process.argv.slice(2), ...files], {
    stdio: 'inherit',
    env: { ...process.env, ...servers.env },
  });
  code = await new Promise<number>((resolve) => child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0))));
} finally {
  await servers.stop();
}
process.exit(code);
