/**
 * A user's app that composes its own Terminus controller (TestApp's /terminus route) with
 * ConnectionHealthIndicator, run by terminus-versions.e2e-spec.ts in a process whose `@nestjs/terminus`
 * is one given version (see package-alias.hook.ts).
 *
 * Two custom connections, 'db' (required) and 'cache' (optional), answer their pings until a line
 * "down <name>" on stdin makes them fail. The app writes JSON lines to stdout: first { url, terminus }
 * once both are up, then { down: name } once that connection reads down. It closes when stdin ends.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TestApp } from './test-app.js';

const failing = new Set<string>();
const connection = (name: string, required: boolean) => ({
  name,
  kind: 'custom' as const,
  required,
  ping: async () => {
    if (failing.has(name)) throw new Error(`${name} refused the ping`);
  },
  heartbeat: { intervalMs: 200, timeoutMs: 100, jitter: 0 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 200, maxAttempts: Infinity },
});

/** The version of the @nestjs/terminus this process resolves, hook included. */
function terminusVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.resolve('@nestjs/terminus')));
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

const say = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`);

const app = await TestApp.start({ health: { connections: [connection('db', true), connection('cache', false)] } });
await app.waitForState('db', 'up', 5_000);
await app.waitForState('cache', 'up', 5_000);
say({ url: app.url, terminus: terminusVersion() });

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const name = line.replace(/^down /, '');
  failing.add(name);
  void app.waitForState(name, 'down', 5_000).then(() => say({ down: name }));
});
lines.once('close', () => void app.close());
