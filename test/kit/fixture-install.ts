import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './process.util.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures');

/**
 * The packages of test/fixtures/<name> (its package.json and lockfile), installed once per version of its
 * lockfile and kept in the temporary folder across runs (npm's own cache makes the first install cheap too).
 * Outside the repository on purpose: from inside it, Node and TypeScript would find the repository's
 * node_modules. Returns the folder that holds node_modules.
 */
export async function installedFixture(name: string): Promise<string> {
  const app = path.join(fixtures, name);
  const files = ['package.json', 'package-lock.json'];
  const key = createHash('sha256').update(files.map((file) => readFileSync(path.join(app, file), 'utf8')).join('\0')).digest('hex').slice(0, 16);
  const cache = path.join(os.tmpdir(), `nestjs-connection-health-${name}`, key);
  if (existsSync(path.join(cache, 'node_modules/.package-lock.json'))) return cache;
  // Installed aside and renamed into place, so that a run beside this one never sees half an install.
  const staging = `${cache}.${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  for (const file of files) cpSync(path.join(app, file), path.join(staging, file));
  await run('npm', ['ci', '--prefix', staging, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'], 300_000);
  try {
    renameSync(staging, cache);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another run installed it first
  }
  return cache;
}
