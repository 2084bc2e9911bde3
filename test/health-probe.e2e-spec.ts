import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from './kit/process.util.js';
import { TestApp } from './kit/test-app.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const probe = path.join(here, '..', 'lib', 'bin', 'health-probe.js');
const fast = { heartbeat: { intervalMs: 300, timeoutMs: 150, connectTimeoutMs: 300 }, reconnect: { initialDelayMs: 100, maxDelayMs: 200, maxAttempts: Infinity } };

/** Runs the built bin as a real child process; PORT is set so a probe of the default URL would reach `env.PORT`. */
async function run(args: readonly string[], env: { PORT?: string } = {}) {
  const child = spawn(process.execPath, [probe, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  child.stderr.on('data', (chunk) => (err += chunk));
  const startedAt = Date.now();
  const [code] = await once(child, 'exit');
  return { code, out, err, ms: Date.now() - startedAt };
}

/** A real HTTP server on loopback that records every request it sees. */
async function server(t: TestContext, answer: (request: IncomingMessage, response: ServerResponse) => void) {
  const requests: string[] = [];
  const http = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    answer(request, response);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  t.after(() => {
    http.closeAllConnections();
    http.close();
  });
  return { port, url: `http://127.0.0.1:${port}`, requests };
}

const usageLine = /^connection-health-probe: [^\n]+; usage: connection-health-probe \[url\] \[--timeout ms\] \(--help for more\)\n$/;

const json = (status: number, body: unknown) => (_request: IncomingMessage, response: ServerResponse) =>
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

describe('the connection-health-probe command', () => {
  for (const flag of ['--help', '-h']) {
    it(`prints its usage and exits 0 for ${flag} without probing anything`, async (t) => {
      const health = await server(t, json(200, { status: 'ok', details: {} }));
      const help = await run([flag], { PORT: String(health.port) });
      assert.deepEqual({ code: help.code, err: help.err }, { code: 0, err: '' }, help.out);
      assert.match(help.out, /^usage: connection-health-probe \[url\] \[--timeout ms\]\n/);
      assert.match(help.out, /exit codes:\n +0 +healthy/i, 'the exit codes are documented');
      assert.deepEqual(health.requests, [], 'help probed the default URL');
      // Without the flag the same PORT is probed: the server above would have seen a help that probes.
      const probed = await run([], { PORT: String(health.port) });
      assert.equal(probed.code, 0, probed.out);
      assert.deepEqual(health.requests, ['GET /health']);
    });
  }

  it('is described in the README with the usage it prints', async () => {
    const readme = await readFile(path.join(here, '..', '..', 'README.md'), 'utf8');
    const shown = /```text\n(usage: connection-health-probe[^`]*)```/.exec(readme)?.[1];
    assert.ok(shown, 'the README has a text block with the usage');
    const help = (await run(['--help'])).out.split('\n');
    for (const line of shown.trimEnd().split('\n')) assert.ok(help.includes(line), `the README shows a line --help does not print: ${line}`);
  });

  const refusals: Record<string, (url: string) => string[]> = {
    'a URL without a scheme': (url) => [url.replace('http://', '')],
    'a host:port without a scheme': (url) => [url.replace('http://127.0.0.1', 'localhost')],
    'an FTP URL': (url) => [url.replace('http:', 'ftp:')],
    'a file URL': () => ['file:///etc/hostname'],
    'a scheme with no host': () => ['http://'],
    'an unknown flag': (url) => ['--verbose', url],
    'an unknown short flag': (url) => [url, '-t', '500'],
    'a timeout without a value': (url) => [url, '--timeout'],
    'an empty timeout': (url) => [url, '--timeout='],
    'a timeout that is no number': (url) => [url, '--timeout', 'soon'],
    'a timeout of 0': (url) => [url, '--timeout=0'],
    'a fractional timeout': (url) => [url, '--timeout=2.5'],
    'a timeout beyond what a timer holds': (url) => [url, '--timeout=99999999999'],
    'two URLs': (url) => [url, url.replace('/health', '/ready')],
  };
  for (const [what, args] of Object.entries(refusals)) {
    it(`refuses ${what} with one usage line on stderr and exit code 2, probing nothing`, async (t) => {
      const health = await server(t, json(200, { status: 'ok' }));
      const refused = await run(args(`${health.url}/health`), { PORT: String(health.port) });
      assert.deepEqual({ code: refused.code, out: refused.out }, { code: 2, out: '' }, `stderr: ${refused.err}`);
      assert.match(refused.err, usageLine);
      assert.deepEqual(health.requests, [], 'a refused command line probed');
    });
  }

  it('refuses a PORT that is no port the same way', async () => {
    const refused = await run([], { PORT: '30x0' });
    assert.deepEqual({ code: refused.code, out: refused.out }, { code: 2, out: '' }, `stderr: ${refused.err}`);
    assert.match(refused.err, usageLine);
  });

  for (const form of [['--timeout', '500'], ['--timeout=500']]) {
    it(`takes ${form.join(' ')}, before or after the URL, giving up on a server that never answers`, async (t) => {
      const silent = await server(t, () => undefined); // accepts, never answers
      for (const args of [[`${silent.url}/health`, ...form], [...form, `${silent.url}/health`]]) {
        const hung = await run(args);
        assert.deepEqual({ code: hung.code, out: hung.out, err: hung.err }, { code: 1, out: 'unreachable: no answer within 500 ms\n', err: '' });
        assert.ok(hung.ms < 3_000, `gave up after ${hung.ms} ms`);
      }
    });
  }

  it('exits 1 when nothing listens', async () => {
    const refused = await run([`http://127.0.0.1:${await freePort()}/health`]);
    assert.equal(refused.code, 1);
    assert.match(refused.out, /^unreachable: connect ECONNREFUSED 127\.0\.0\.1:\d+\n$/);
  });

  it('does not follow a redirect: a 3xx is unhealthy, and its Location is neither requested nor printed', async (t) => {
    const elsewhere = await server(t, json(200, { status: 'ok' }));
    const moved = await server(t, (_request, response) =>
      response.writeHead(302, { location: `${elsewhere.url}/health`, 'content-type': 'text/html' }).end(`<a href="${elsewhere.url}/health">moved</a>`),
    );
    const answer = await run([`${moved.url}/health`]);
    assert.equal(answer.code, 1, answer.out);
    assert.match(answer.out, /^unhealthy: 302 \(redirect not followed\) in \d+ ms\n$/);
    assert.ok(!answer.out.includes(String(elsewhere.port)), answer.out);
    await sleep(200); // a request the probe had sent would have reached the server by now
    assert.deepEqual(elsewhere.requests, []);
    assert.deepEqual(moved.requests, ['GET /health']);
  });

  it('never echoes a body that is not JSON', async (t) => {
    const body = 'Internal error: password=hunter2 at db.internal:5432 \u001b[2J';
    for (const status of [200, 503]) {
      const plain = await server(t, (_request, response) => response.writeHead(status, { 'content-type': 'text/plain' }).end(body));
      const answer = await run([`${plain.url}/health`]);
      assert.equal(answer.code, status === 200 ? 0 : 1);
      assert.match(answer.out, status === 200 ? /^healthy: 200 in \d+ ms\n$/ : /^unhealthy: 503 in \d+ ms\n$/);
    }
  });

  it('prints only short plain words of a JSON body: a hostile one cannot inject text or control characters', async (t) => {
    const hostile = await server(
      t,
      json(503, {
        status: 'ok\r\nhealthy: 200 ok in 1 ms\u001b[2K',
        details: {
          db: { status: 'down', message: 'password authentication failed for user "app"' },
          cache: { status: 'up' },
          mail: { status: 'degraded\u001b]0;owned\u0007' },
          'queue\nhealthy: 200': { status: 'down' },
          ['x'.repeat(200)]: { status: 'down' },
          inbox: { status: 'down' },
          orders: 'not an object',
        },
      }),
    );
    const answer = await run([`${hostile.url}/health`]);
    assert.equal(answer.code, 1);
    assert.match(answer.out, /^unhealthy: 503 \(db: down, inbox: down, 4 more\) in \d+ ms\n$/);

    const many = await server(t, json(503, { status: 'error', details: Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`db${i}`, { status: 'down' }])) }));
    const long = await run([`${many.url}/health`]);
    assert.match(long.out, /^unhealthy: 503 error \(db0: down, db1: down, db2: down, db3: down, db4: down, 7 more\) in \d+ ms\n$/);
  });

  it('exits 0 for a healthy app and 1 for an unhealthy one, printing one line', async () => {
    let up = true;
    const app = await TestApp.start({
      health: { connections: [{ name: 'api', kind: 'custom', ping: async () => void (up || (await Promise.reject(new Error('down')))), ...fast }] },
    });
    try {
      await app.waitForState('api', 'up', 2_000);
      const healthy = await run([`${app.url}/health`]);
      assert.equal(healthy.code, 0);
      assert.match(healthy.out, /^healthy: 200 ok in \d+ ms\n$/);
      up = false;
      await app.waitForState('api', 'down', 2_000);
      const unhealthy = await run([`${app.url}/health`]);
      assert.equal(unhealthy.code, 1);
      assert.match(unhealthy.out, /^unhealthy: 503 error \(api: down\) in \d+ ms\n$/);
    } finally {
      await app.close();
    }
  });
});
