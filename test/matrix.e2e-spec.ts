/**
 * The compatibility matrix: the packed package in the Nest apps people really have. One app
 * (test/fixtures/matrix/app, written as a Nest 11 CommonJS user writes it) runs in each row, with the row's
 * own lockfile: the starter files of its `nest new` (test/fixtures/matrix/<variant>) over it, the README's code
 * blocks in it, the tarball installed as a user installs it. Each row must compile with its TypeScript, pass its
 * own e2e runner (Jest or Vitest) against a sql.js database, a local TCP listener and the suite's real dovecot,
 * ActiveMQ, redis-server, RabbitMQ, mosquitto and nats-server (for Redis, AMQP, MQTT and NATS each, a connection the package creates
 * and one of the app's own; and the app's four Nest ClientProxies of ClientsModule, RMQ, Redis, MQTT and NATS, watched by the
 * microservice kind: the row's own @nestjs/microservices, 11.2 loading nats 2.x, 12.1 @nats-io/transport-node 3.x), then run
 * as built (`node dist/main`), answer /health 200 (those client libraries loaded and their connections up) and 503, and exit
 * 0 on SIGTERM (ClientsModule closing the proxies, which the package never closes).
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ActiveMqServer } from './kit/activemq.server.js';
import { DovecotServer } from './kit/dovecot.server.js';
import { installedFixture, installTarball, packPackage, root } from './kit/packed-package.js';
import { freePort } from './kit/process.util.js';
import { readmeFiles, withEsmSpecifiers } from './kit/readme-code.js';
import type { MosquittoServer } from './kit/mosquitto.server.js';
import type { NatsServer } from './kit/nats.server.js';
import type { RabbitMqServer } from './kit/rabbitmq.server.js';
import type { RedisServer } from './kit/redis.server.js';
import { sharedActiveMq, sharedDovecot, sharedMosquitto, sharedNats, sharedRabbitMq, sharedRedis } from './kit/shared-servers.js';

interface Row {
  /** The starter's files, under test/fixtures/matrix. */
  readonly variant: 'nest11-cjs' | 'nest12-esm';
  /** The row's package.json and package-lock.json, under the variant's rows/. */
  readonly row: string;
  readonly format: 'commonjs' | 'module';
  /** HTTP adapters the built app is started with (HTTP_ADAPTER). */
  readonly adapters: readonly ('express' | 'fastify')[];
}

const rows: readonly Row[] = [
  { variant: 'nest11-cjs', row: 'ts5.7', format: 'commonjs', adapters: ['express'] },
  { variant: 'nest11-cjs', row: 'ts5.9', format: 'commonjs', adapters: ['express'] },
  { variant: 'nest12-esm', row: 'ts6', format: 'module', adapters: ['express', 'fastify'] },
];

const matrix = path.join(root, 'test/fixtures/matrix');

interface Outcome {
  code: number | null;
  output: string;
}

/** Runs a command of the fixture to its end; its output goes into the assertion message when it fails. */
function outcome(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 300_000): Promise<Outcome> {
  return new Promise((resolve) =>
    execFile(cmd, args, { cwd, timeout: timeoutMs, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1', CI: '1', ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
    ),
  );
}

function assertPassed(step: string, { code, output }: Outcome): void {
  assert.equal(code, 0, `${step} failed (exit ${code}):\n${output}`);
}

/** Copies `from` into `to`, the ES module specifiers (`./x.js`) added to every .ts file for an ES module app. */
function copyApp(from: string, to: string, format: Row['format'], skip: (name: string) => boolean = () => false): void {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (skip(entry.name)) continue;
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) {
      mkdirSync(target, { recursive: true });
      copyApp(source, target, format);
    } else if (format === 'module' && entry.name.endsWith('.ts')) {
      writeFileSync(target, withEsmSpecifiers(readFileSync(source, 'utf8')));
    } else {
      cpSync(source, target);
    }
  }
}

/**
 * A fresh app folder holding the row's installed dependencies. node_modules is hard-linked (`cp -al`, seconds
 * faster than a copy of ~500 packages): installing the tarball only adds files there, so the cache's files are
 * never written through the links; npm's hidden lockfile, which it rewrites in place, is a copy of its own.
 */
async function copyInstalled(installed: string, app: string): Promise<void> {
  mkdirSync(app, { recursive: true });
  for (const file of ['package.json', 'package-lock.json']) cpSync(path.join(installed, file), path.join(app, file));
  const cp = await outcome('cp', ['-al', path.join(installed, 'node_modules'), path.join(app, 'node_modules')], app);
  assertPassed('cp -al node_modules', cp);
  const hidden = path.join(app, 'node_modules/.package-lock.json');
  rmSync(hidden);
  cpSync(path.join(installed, 'node_modules/.package-lock.json'), hidden);
}

/** A local TCP dependency the harness takes away: close() stops listening and cuts every open connection. */
class Listener {
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((socket) => {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
  });

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

interface Health {
  status: number;
  /** Each connection's status in the body ('up', 'degraded', 'down'). */
  connections: Record<string, string>;
}

async function health(port: number): Promise<Health | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) });
    const body = (await response.json().catch(() => ({}))) as { details?: Record<string, { status: string }> };
    return { status: response.status, connections: Object.fromEntries(Object.entries(body.details ?? {}).map(([name, { status }]) => [name, status])) };
  } catch {
    return undefined; // not listening yet
  }
}

/**
 * Connections through the client libraries the package loads at run time: imapflow, @stomp/stompjs, ioredis (its
 * client and the app's), amqplib (its connection, and the app's amqp-connection-manager), mqtt (its client and the
 * app's), nats (its connection and the app's); and the app's Nest ClientProxies (@nestjs/microservices' RMQ, Redis,
 * MQTT and NATS transports, the last on nats 2.x in Nest 11, @nats-io/transport-node 3.x in Nest 12).
 */
const loadedPeers = [
  'mail',
  'broker',
  'sessions',
  'cache',
  'jobs',
  'events',
  'devices',
  'telemetry',
  'signals',
  'alerts',
  'orders',
  'cache-events',
  'device-commands',
  'notifications',
];

/** Starts the built app, waits for /health 200 with the connections of loadedPeers up, takes the TCP dependency away (503), then SIGTERM: exit 0. */
async function runBuilt(app: string, main: string, env: NodeJS.ProcessEnv): Promise<void> {
  const listener = new Listener();
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [main], {
    cwd: app,
    env: { ...process.env, ...env, PORT: String(port), MATRIX_TCP_PORT: String(await listener.listen()) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let running = true;
  void exited.then(() => (running = false));
  const waitFor = async (want: number, timeoutMs: number, up: readonly string[] = []): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    let seen: Health | undefined;
    while (Date.now() < deadline && running) {
      seen = await health(port);
      if (seen?.status === want && up.every((name) => seen!.connections[name] === 'up')) return;
      await sleep(100);
    }
    const wanted = up.length ? ` with ${up.join(', ')} up` : '';
    assert.fail(`node ${main} (${env.HTTP_ADAPTER ?? 'express'}): /health answered ${seen ? `${seen.status} ${JSON.stringify(seen.connections)}` : 'nothing'}, not ${want}${wanted}, within ${timeoutMs} ms${running ? '' : ' (the process exited)'}:\n${output}`);
  };
  try {
    await waitFor(200, 60_000, loadedPeers);
    await listener.close();
    await waitFor(503, 20_000);
    const signalled = Date.now();
    child.kill('SIGTERM');
    const { code, signal } = await Promise.race([exited, sleep(20_000).then(() => ({ code: null, signal: 'timeout' as NodeJS.Signals }))]);
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, `node ${main} after SIGTERM (${Date.now() - signalled} ms):\n${output}`);
  } finally {
    if (running) child.kill('SIGKILL');
    await listener.close();
  }
}

describe('the compatibility matrix: the packed package in Nest 11 CommonJS and Nest 12 ES module apps', () => {
  let dir: string;
  let tarball: string;
  let serversEnv: Record<string, string>;

  before(
    async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'connection-health-matrix-'));
      const [packed, dovecot, activemq, redis, rabbitmq, mosquitto, nats] = await Promise.all([
        packPackage(dir),
        sharedDovecot(),
        sharedActiveMq(),
        sharedRedis(),
        sharedRabbitMq(),
        sharedMosquitto(),
        sharedNats(),
      ]);
      tarball = packed;
      serversEnv = serverEnv(dovecot, activemq, redis, rabbitmq, mosquitto, nats);
    },
    { timeout: 300_000 },
  );

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const row of rows) {
    describe(`${row.variant}/${row.row}`, () => {
      const times: Record<string, number> = {};
      let app: string;
      const timed = async <T>(step: string, work: () => Promise<T>): Promise<T> => {
        const started = Date.now();
        try {
          return await work();
        } finally {
          times[step] = Date.now() - started;
          console.log(`matrix ${row.variant}/${row.row}: ${step} ${((Date.now() - started) / 1000).toFixed(1)} s`);
        }
      };

      after(() => console.log(`matrix ${row.variant}/${row.row}: ${JSON.stringify(times)}`));

      it('installs from its lockfile, with the app, the README blocks and the tarball', { timeout: 600_000 }, async () => {
        const installed = await timed('install (lockfile, cached)', () => installedFixture(`matrix/${row.variant}/rows/${row.row}`));
        app = path.join(dir, `${row.variant}-${row.row}`);
        await timed('copy', async () => {
          await copyInstalled(installed, app);
          copyApp(path.join(matrix, 'app'), app, row.format);
          copyApp(path.join(matrix, row.variant), app, row.format, (name) => name === 'rows');
          for (const file of readmeFiles(row.format)) {
            mkdirSync(path.dirname(path.join(app, file.path)), { recursive: true });
            writeFileSync(path.join(app, file.path), `// README.md line ${file.line}\n${file.text}`);
          }
        });
        await timed('install tarball', () => installTarball(app, tarball));
      });

      it("compiles the app, its tests and every README block with the row's TypeScript", { timeout: 300_000 }, async () => {
        assert.ok(app, 'the install step failed');
        assertPassed('tsc --noEmit', await timed('tsc', () => outcome(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'tsconfig.json'], app)));
      });

      it("passes its own e2e runner: /health 200 and 503, the indicator degraded never 500, imapflow, stompjs, ioredis, amqplib, mqtt, nats and the RMQ, Redis, MQTT and NATS ClientProxies up", { timeout: 300_000 }, async () => {
        assert.ok(app, 'the install step failed');
        const run = await timed('test:e2e', () => outcome('npm', ['run', 'test:e2e'], app, serversEnv));
        assertPassed('npm run test:e2e', run);
        // Jest: "Tests:       11 passed, 11 total"; Vitest: "Tests  11 passed (11)". Every test of the app's and the README's ran.
        const [, passed, total] = /Tests:?\s+(\d+) passed(?:, (\d+) total| \((\d+)\))/.exec(run.output)?.filter((group) => group !== undefined) ?? [];
        const written = readdirSync(path.join(app, 'test'))
          .filter((file) => file.endsWith('.e2e-spec.ts'))
          .reduce((sum, file) => sum + (readFileSync(path.join(app, 'test', file), 'utf8').match(/^\s*it\(/gm)?.length ?? 0), 0);
        assert.ok(written >= 11 && Number(passed) === written && passed === total, `npm run test:e2e ran ${passed ?? 'no'} tests of ${total ?? '?'}, ${written} written:\n${run.output}`);
      });

      it('builds, serves /health 200 with imapflow, stompjs, ioredis, amqplib, mqtt, nats and the four ClientProxies up, then 503 without its dependency, and exits 0 on SIGTERM', { timeout: 300_000 }, async () => {
        assert.ok(app, 'the install step failed');
        assertPassed('npm run build', await timed('build', () => outcome('npm', ['run', 'build'], app)));
        for (const adapter of row.adapters) {
          await timed(`node dist/main (${adapter})`, () => runBuilt(app, 'dist/main.js', { ...serversEnv, HTTP_ADAPTER: adapter }));
        }
      });
    });
  }
});

function serverEnv(dovecot: DovecotServer, activemq: ActiveMqServer, redis: RedisServer, rabbitmq: RabbitMqServer, mosquitto: MosquittoServer, nats: NatsServer): Record<string, string> {
  return {
    MATRIX_IMAP_HOST: dovecot.host,
    MATRIX_IMAP_PORT: String(dovecot.port),
    MATRIX_IMAP_USER: DovecotServer.user,
    MATRIX_IMAP_PASSWORD: DovecotServer.password,
    MATRIX_STOMP_HOST: activemq.host,
    MATRIX_STOMP_PORT: String(activemq.port),
    MATRIX_REDIS_URL: redis.url,
    MATRIX_AMQP_URL: rabbitmq.amqpUrl,
    MATRIX_MQTT_URL: mosquitto.url,
    MATRIX_NATS_URL: nats.url,
  };
}
