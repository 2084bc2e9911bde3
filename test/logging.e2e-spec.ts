import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { installedFixture } from './kit/packed-package.js';

const build = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const app = path.join(build, 'test/fixtures/logging.app.js');
const register = path.join(build, 'test/kit/package-alias.register.js');
const SECRETS = ['s3cr3t', 'k3y-0f-ledger'];
const FIELDS = ['connection', 'kind', 'from', 'to', 'reason', 'attempt'];

interface Run {
  /** Every line the app wrote, stdout then stderr (error lines go there, so the order is not the log's). */
  lines: string[];
  /** The transitions the app saw on events$, as 'from -> to', sorted like the lines' are compared. */
  transitions: string[];
}

let scratch: string;

/**
 * Runs test/fixtures/logging.app.ts to its end under `logger`; `aliases` make its imports (the package's
 * included) resolve to another install of Nest and its loggers, as in an app that has them.
 */
function runApp(logger: 'text' | 'json' | 'pino', aliases: Record<string, string> = {}): Promise<Run> {
  const file = path.join(scratch, `${logger}-${Object.keys(aliases).length}.json`);
  const env = { ...process.env, NO_COLOR: '1', CH_LOGGER: logger, CH_TRANSITIONS_FILE: file, CH_PACKAGE_ALIASES: JSON.stringify(aliases) };
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ['--import', register, app], { env, timeout: 60_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`the app failed: ${stderr}`, { cause: error }));
      const lines = `${stdout}${stderr}`.split('\n').filter((line) => line !== '');
      resolve({ lines, transitions: (JSON.parse(readFileSync(file, 'utf8')) as string[]).sort() });
    }),
  );
}

/** The transitions a log line tells of: 'ledger: from -> to (...)', or the reminder of a long outage. */
function isTransition(message: unknown): boolean {
  return typeof message === 'string' && /^ledger: (\S+ -> \S+ \(|still down after)/.test(message);
}

/** What every logger must do: one line per transition, nothing of the secrets anywhere. */
function assertOneLineEach(run: Run, transitionLines: unknown[]): void {
  assert.ok(run.transitions.length >= 6, `the connection came up, went down and failed: ${run.transitions.join(', ')}`);
  assert.equal(transitionLines.length, run.transitions.length, `one line per transition:\n${run.lines.join('\n')}`);
  for (const secret of SECRETS) assert.deepEqual(run.lines.filter((line) => line.includes(secret)), [], `${secret} leaked`);
}

/** Text: every line is a record of its own, and each transition line carries its fields on it. */
function assertText(run: Run): void {
  assert.deepEqual(run.lines.filter((line) => !line.startsWith('[Nest] ')), [], 'every line starts a record');
  const lines = run.lines.filter((line) => /\[ConnectionHealth\] ledger: /.test(line));
  assertOneLineEach(run, lines);
  for (const line of lines) for (const field of FIELDS) assert.match(line, new RegExp(`\\b${field}: `), line);
  assert.deepEqual(
    lines.map((line) => line.match(/from: '(\w+)', to: '(\w+)'/)!.slice(1).join(' -> ')).sort(),
    run.transitions,
  );
}

/** JSON lines: every line parses, and each transition record holds its fields as an object, not text. */
function assertJson(run: Run, fieldsOf: (record: Record<string, unknown>) => unknown, messageOf: (record: Record<string, unknown>) => unknown): void {
  const records = run.lines.map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return assert.fail(`not a JSON line: ${line}`);
    }
  });
  const transitions = records.filter((record) => record.context === 'ConnectionHealth' && isTransition(messageOf(record)));
  assertOneLineEach(run, transitions);
  assert.deepEqual(
    transitions.map((record) => {
      const fields = fieldsOf(record) as Record<string, unknown>;
      assert.deepEqual(Object.keys(fields ?? {}).filter((key) => FIELDS.includes(key)).sort(), [...FIELDS].sort(), JSON.stringify(record));
      assert.equal(fields.connection, 'ledger');
      assert.equal(fields.kind, 'custom');
      assert.equal(typeof fields.attempt, 'number');
      return `${fields.from} -> ${fields.to}`;
    }).sort(),
    run.transitions,
  );
}

before(() => {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'connection-health-logging-'));
});
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('transition lines on Nest 12 (the repository\'s)', () => {
  it('the default ConsoleLogger: one line per transition, fields on it', async () => assertText(await runApp('text')));

  it('ConsoleLogger({ json: true }): one JSON line per transition, fields as `params`', async () =>
    assertJson(await runApp('json'), (record) => record.params, (record) => record.message));

  it('nestjs-pino: one JSON line per transition, fields as top-level pino fields', async () =>
    assertJson(await runApp('pino'), (record) => record, (record) => record.msg));
});

describe('transition lines on Nest 11 (test/fixtures/nest11-loggers)', () => {
  let aliases: Record<string, string>;

  before(
    async () => {
      const installed = await installedFixture('nest11-loggers');
      const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
      const resolve = createRequire(path.join(installed, 'package.json')).resolve;
      aliases = Object.fromEntries(Object.keys(manifest.dependencies).map((name) => [name, pathToFileURL(resolve(name)).href]));
      const nest = JSON.parse(readFileSync(resolve('@nestjs/common/package.json'), 'utf8')) as { version: string };
      assert.match(nest.version, /^11\./);
    },
    { timeout: 300_000 },
  );

  it('the default ConsoleLogger: one line per transition, fields on it', async () => assertText(await runApp('text', aliases)));

  it('ConsoleLogger({ json: true }): one JSON line per transition, `message` a string as on the app\'s lines, the fields as JSON text in it', async () => {
    const run = await runApp('json', aliases);
    const messages = run.lines.map((line) => (JSON.parse(line) as { message: unknown }).message);
    assert.deepEqual([...new Set(messages.map((message) => typeof message))], ['string'], run.lines.join('\n'));
    const fieldsIn = (message: unknown) => JSON.parse(/ (\{.*\})$/.exec(message as string)?.[1] ?? 'null') as unknown;
    assertJson(run, (record) => fieldsIn(record.message), (record) => record.message);
  });

  it('nestjs-pino: one JSON line per transition, fields as top-level pino fields', async () =>
    assertJson(await runApp('pino', aliases), (record) => record, (record) => record.msg));
});
