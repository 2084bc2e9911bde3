/**
 * The secret corpus through a real app on the built package (test/fixtures/secret-leak.app.ts): custom
 * connections whose pings and reconnects throw each corpus message with a planted secret, the module told
 * the secret through `secrets`. No form of the secret may appear anywhere the app lets a human read: the
 * logs of the text and the JSON ConsoleLogger at every level, every health route at every detail level, the
 * Terminus indicator, the Prometheus metrics, events and snapshots, and JSON.stringify / util.inspect of the
 * handles, the registry, the probes and the indicator.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PLANTED_SECRETS, PLANTED_USER, leakedForms } from './kit/planted-secrets.js';
import { readSecretCorpus } from './kit/secret-corpus.js';

const app = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'secret-leak.app.js');
const entries = readSecretCorpus().entries.filter((entry) => entry.password === undefined);
/** Every corpus message in one text: the forms to look for are those of all of them. */
const allTemplates = entries.map((entry) => entry.text).join('\n');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runApp(logger: 'text' | 'json', levels: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [app], {
      env: { ...process.env, CH_LEAK_LOGGER: logger, CH_LEAK_LEVELS: levels.join(',') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** The output of each app, by `<secret index> <level>`: what came before its marker on both streams. */
function sections(run: Run): Map<string, string> {
  const byKey = new Map<string, string>();
  for (const stream of [run.stdout, run.stderr]) {
    let start = 0;
    for (const marker of stream.matchAll(/^@@ (\d+ \w+)\n/gm)) {
      byKey.set(marker[1]!, (byKey.get(marker[1]!) ?? '') + stream.slice(start, marker.index));
      start = marker.index! + marker[0].length;
    }
  }
  return byKey;
}

describe('no planted secret leaves a real app that was told it', { timeout: 400_000 }, () => {
  const runs: Array<['text' | 'json', string[]]> = [
    ['text', ['full', 'none']],
    ['json', ['status']],
  ];
  for (const [logger, levels] of runs) {
    it(`${logger} logs; health bodies at details ${levels.join(' and ')}; metrics, events, snapshots, inspection`, async () => {
      const run = await runApp(logger, levels);
      assert.equal(run.code, 0, `the app failed:\n${run.stderr.slice(-3_000)}`);
      const outputs = sections(run);
      const leaks: string[] = [];
      for (const [index, { why, secret }] of PLANTED_SECRETS.entries()) {
        for (const level of levels) {
          const output = outputs.get(`${index} ${level}`);
          assert.ok(output, `no output for secret ${index} at ${level}`);
          // What proves the messages went through every output, so that finding nothing means something.
          assert.equal(output.match(/reconnecting -> failed/g)?.length, entries.length, `every connection failed and was logged (${why}, ${level})`);
          assert.equal(output.match(/^event /gm)!.length >= entries.length * 6, true, `events were printed (${why}, ${level})`);
          for (const route of ['/health', '/health/ready', '/health/live', '/health/startup', '/terminus']) {
            assert.match(output, new RegExp(`^body ${route} \\d{3}: \\{`, 'm'), `${route} answered (${why}, ${level})`);
          }
          assert.match(output, /connection_health_heartbeat_failures_total\{connection="c0"/, 'metrics were printed');
          for (const label of ['registry', 'probes', 'indicator', 'handle c0', 'snapshot c0']) assert.match(output, new RegExp(`^${label}: `, 'm'), `${label} was printed`);
          assert.ok(output.includes('***'), `something was scrubbed (${why}, ${level})`);
          const found = leakedForms(output, allTemplates, { user: PLANTED_USER, secret });
          if (found.length) {
            const at = output.indexOf(secret);
            leaks.push(`${why} at ${level}: ${found.join(', ')}${at >= 0 ? `\n  ...${output.slice(Math.max(0, at - 300), at + 100)}...` : ''}`);
          }
        }
      }
      assert.deepEqual(leaks, []);
    });
  }
});
