import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './process.util.js';

/** The repository's root (this file runs from .build/test/kit), whose build `npm pack` packs. */
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const fixtures = path.join(root, 'test/fixtures');

/**
 * The dependencies of the consumer app test/fixtures/`fixture`, installed once per version of its lockfile and
 * kept in the temporary folder across runs (npm's own cache makes the first install cheap too). Outside the
 * repository on purpose: from inside it, Node and TypeScript would find the repository's node_modules, which
 * has every optional peer.
 */
export async function installedFixture(fixture: string): Promise<string> {
  const app = path.join(fixtures, fixture);
  const files = ['package.json', 'package-lock.json'];
  const key = createHash('sha256').update(files.map((file) => readFileSync(path.join(app, file), 'utf8')).join('\0')).digest('hex').slice(0, 16);
  const cache = path.join(os.tmpdir(), `nestjs-connection-health-${fixture}`, key);
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

/** Packs the built package into `dir` as `npm publish` would, and returns the tarball's path. */
export async function packPackage(dir: string): Promise<string> {
  const [packed] = JSON.parse(await run('npm', ['pack', root, '--json', '--pack-destination', dir], 120_000)) as Array<{ filename: string }>;
  return path.join(dir, packed!.filename);
}

/** Installs the tarball into the app folder `app`, as a user would from the registry. */
export async function installTarball(app: string, tarball: string): Promise<void> {
  await run('npm', ['install', '--prefix', app, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', tarball], 180_000);
}
