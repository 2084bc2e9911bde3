import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { installedFixture, installTarball, packPackage, root } from './kit/packed-package.js';

/** Runs a command to its end and returns its exit code and all it printed: the linters explain failures on stdout. */
function outcome(cmd: string, args: readonly string[], cwd = root): Promise<{ code: number; output: string; stdout: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { cwd, timeout: 180_000, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}`, stdout }),
    ),
  );
}

const bin = (name: string): string => path.join(root, 'node_modules/.bin', name);

describe('the packed package, for CommonJS and ES module consumers', () => {
  let dir: string;
  let tarball: string;

  before(
    async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'connection-health-formats-'));
      tarball = await packPackage(dir);
    },
    { timeout: 180_000 },
  );

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('publint finds nothing to report, not even a suggestion', { timeout: 180_000 }, async () => {
    const { code, output } = await outcome(bin('publint'), ['run', tarball, '--strict']);
    assert.equal(code, 0, output);
    assert.match(output, /All good!/, output);
  });

  it('attw: node10, node16 from CommonJS and from ESM, and bundlers each resolve the right format and its types', { timeout: 180_000 }, async () => {
    const { code, output } = await outcome(bin('attw'), [tarball, '--no-emoji', '--format', 'ascii']);
    assert.equal(code, 0, output);
    assert.match(output, /No problems found/, output);
    const main = /"nestjs-connection-health"\n\n([\s\S]*?)\n\n/.exec(output)?.[1];
    assert.deepEqual(main?.split('\n').map((line) => line.trim()), ['node10: OK', 'node16 (from CJS): OK (CJS)', 'node16 (from ESM): OK (ESM)', 'bundler: OK'], output);
  });

  it('a CommonJS Nest 11 app require()s it without require(esm), answers /health 200, shares injection names with the ESM build, and runs the HEALTHCHECK commands of the README and sample/Dockerfile', { timeout: 600_000 }, async () => {
    const app = path.join(dir, 'app');
    cpSync(await installedFixture('cjs-consumer'), app, { recursive: true });
    cpSync(path.join(root, 'test/fixtures/cjs-consumer/main.cjs'), path.join(app, 'main.cjs'));
    await installTarball(app, tarball);
    // Without require(esm), as on Node < 20.19 and in Jest's default mode: an ES module build fails to load here.
    const { code, output, stdout } = await outcome(process.execPath, ['--no-experimental-require-module', 'main.cjs'], app);
    assert.equal(code, 0, output);
    const seen = JSON.parse(stdout) as { resolved: string; health: { status: number; body: string }; injected: boolean[]; sameTokens: boolean };
    assert.equal(path.relative(path.join(app, 'node_modules/nestjs-connection-health'), seen.resolved), path.join('dist', 'cjs', 'index.js'));
    assert.equal(seen.health.status, 200, seen.health.body);
    assert.match(seen.health.body, /"peer"/);
    assert.deepEqual(seen.injected, [true, true]);
    assert.equal(seen.sameTokens, true);

    // The HEALTHCHECK commands of the README (an installed app) and of sample/Dockerfile (the repository's build).
    const readmeProbe = /CMD \["node", "(node_modules\/[^"]+)"/.exec(readFileSync(path.join(root, 'README.md'), 'utf8'))?.[1];
    assert.ok(readmeProbe, "the README's HEALTHCHECK line");
    const help = await outcome(process.execPath, [readmeProbe, '--help'], app);
    assert.equal(help.code, 0, help.output);
    assert.match(help.output, /^usage: connection-health-probe/m);
    const sampleProbe = /CMD \["node", "(dist\/[^"]+)"/.exec(readFileSync(path.join(root, 'sample/Dockerfile'), 'utf8'))?.[1];
    assert.ok(sampleProbe && existsSync(path.join(root, sampleProbe)), `sample/Dockerfile's probe ${sampleProbe} is built`);
  });
});
