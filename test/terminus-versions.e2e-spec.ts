import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const kit = path.join(path.dirname(fileURLToPath(import.meta.url)), 'kit');

/**
 * The oldest and newest @nestjs/terminus of each major in the peer range, installed side by side as npm
 * aliases (devDependencies). Terminus 11 declares Nest ^10 || ^11 as peers; package.json's overrides let it
 * sit in this Nest 12 tree, which changes nothing in the code under test (its HealthIndicatorService and
 * HealthCheckExecutor use Nest only for @Injectable).
 */
const VERSIONS = [
  { alias: 'terminus-11-0', version: /^11\.0\.0$/, hasDegraded: false },
  { alias: 'terminus-11-latest', version: /^11\.1\.\d+$/, hasDegraded: false },
  { alias: 'terminus-12-0', version: /^12\.0\.0$/, hasDegraded: true },
  { alias: 'terminus-12-latest', version: /^12\.\d+\.\d+$/, hasDegraded: true },
];

type Body = { status: string; info?: Record<string, Entry>; error?: Record<string, Entry>; details: Record<string, Entry> };
type Entry = Record<string, unknown>;

/** A user's app (kit/terminus-user.app.ts) in a process where `@nestjs/terminus` is the aliased version. */
class UserApp {
  private readonly lines: AsyncIterator<string>;
  private constructor(private readonly child: ChildProcessWithoutNullStreams, private stderr: { text: string }) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static start(alias: string): UserApp {
    const child = spawn(process.execPath, ['--import', path.join(kit, 'package-alias.register.js'), path.join(kit, 'terminus-user.app.js')], {
      env: { ...process.env, CH_PACKAGE_ALIASES: JSON.stringify({ '@nestjs/terminus': alias }) },
    });
    const stderr = { text: '' };
    child.stderr.on('data', (chunk) => (stderr.text += chunk));
    return new UserApp(child, stderr);
  }

  async next(): Promise<Record<string, string>> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    try {
      const { value, done } = await this.lines.next();
      assert.ok(!done, `the app ended early: ${this.stderr.text}`);
      return JSON.parse(value) as Record<string, string>;
    } finally {
      clearTimeout(timer);
    }
  }

  async down(name: string): Promise<void> {
    this.child.stdin.write(`down ${name}\n`);
    assert.deepEqual(await this.next(), { down: name });
  }

  async close(): Promise<number | null> {
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const [code] = await once(this.child, 'exit');
    clearTimeout(timer);
    return code as number | null;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

async function get(url: string): Promise<{ status: number; body: Body }> {
  const response = await fetch(`${url}/terminus`, { headers: { connection: 'close' } });
  return { status: response.status, body: (await response.json()) as Body };
}

/** What a body says of each connection, without its timestamps; a body without details (a 500) as it is. */
function entries(body: Body): Record<string, Entry> {
  if (!body.details) return body as unknown as Record<string, Entry>;
  return Object.fromEntries(
    Object.entries(body.details).map(([name, { status, state, required, degraded }]) => [
      name,
      { status, state, required, ...(degraded === undefined ? {} : { degraded }) },
    ]),
  );
}

describe('ConnectionHealthIndicator in a user\'s own Terminus controller, on every Terminus in the peer range', () => {
  for (const { alias, version, hasDegraded } of VERSIONS) {
    it(`${alias}: 200 while an optional connection is down, 503 once a required one is, never 500`, async () => {
      const app = UserApp.start(alias);
      try {
        const { url, terminus } = await app.next();
        assert.match(terminus, version, 'the app runs the aliased Terminus');

        const allUp = await get(url);
        assert.deepEqual(
          { status: allUp.status, body: allUp.body.status, entries: entries(allUp.body) },
          { status: 200, body: 'ok', entries: { db: { status: 'up', state: 'up', required: true }, cache: { status: 'up', state: 'up', required: false } } },
        );

        await app.down('cache');
        const optionalDown = await get(url);
        // Terminus 12 knows 'degraded'; Terminus 11 would drop the entry, so it reads up, flagged degraded.
        const cache = hasDegraded
          ? { status: 'degraded', state: 'down', required: false }
          : { status: 'up', state: 'down', required: false, degraded: true };
        assert.deepEqual(
          { status: optionalDown.status, body: optionalDown.body.status, entries: entries(optionalDown.body) },
          { status: 200, body: hasDegraded ? 'degraded' : 'ok', entries: { db: { status: 'up', state: 'up', required: true }, cache } },
        );
        assert.match(String(optionalDown.body.details.cache?.reason), /cache refused the ping/);

        await app.down('db');
        const requiredDown = await get(url);
        assert.deepEqual(
          { status: requiredDown.status, body: requiredDown.body.status, entries: entries(requiredDown.body), error: Object.keys(requiredDown.body.error ?? {}) },
          { status: 503, body: 'error', entries: { db: { status: 'down', state: 'down', required: true }, cache }, error: ['db'] },
        );
        assert.equal(await app.close(), 0);
      } finally {
        app.kill();
      }
    });
  }
});
