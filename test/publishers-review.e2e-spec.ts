/**
 * Publishers, the findings of the second hostile review (issue 15), each of which failed on f8fee59: a flap
 * between up and degraded, a receiver that never answers at shutdown, the failed alert at an exit.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Socket } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type WebhookBody, WebhookPublisher } from '../lib/index.js';
import { TestApp } from './kit/test-app.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An HTTP receiver answering each body with `answer(body, n)`: a status, or 'hang'. */
async function receiver(answer: (body: WebhookBody, n: number) => number | 'hang') {
  const received: Array<{ body: WebhookBody; status: number | 'hang' }> = [];
  const sockets = new Set<Socket>();
  const server = createHttpServer(async (request: IncomingMessage, response: ServerResponse) => {
    let raw = '';
    for await (const chunk of request) raw += String(chunk);
    const body = JSON.parse(raw) as WebhookBody;
    const status = answer(body, received.length + 1);
    received.push({ body, status });
    if (status === 'hang') return;
    response.writeHead(status).end();
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/services/T0/B0/secretpath`,
    received,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('publishers (review 2)', () => {
  it('a connection that flaps up <-> degraded (a ping failing every other beat) yields a summary, not a message per beat', async () => {
    const hook = await receiver(() => 200);
    let beats = 0;
    const app = await TestApp.start({
      health: {
        connections: [
          {
            name: 'pool',
            kind: 'custom',
            // Every other beat fails: below the failure threshold, so up -> degraded -> up -> ... (a busy dependency)
            ping: async () => {
              beats += 1;
              if (beats % 2 === 0) throw new Error('busy');
            },
            heartbeat: { intervalMs: 100, timeoutMs: 80, jitter: 0, failureThreshold: 3 },
          },
        ],
        // The default throttle: 3 a minute, the rest one summary.
        publishers: [new WebhookPublisher({ url: hook.url })],
      },
    });
    try {
      await sleep(3_000);
      // The start-up steps (idle -> connecting -> up) pass without counting; the flap counts.
      const changes = hook.received.filter((r) => r.body.type === 'change' && r.body.from !== 'idle' && r.body.from !== 'connecting').map((r) => `${r.body.from}->${r.body.to}`);
      assert.ok(changes.length <= 3, `default throttle (3 per 60 s): the receiver got ${changes.length} messages in 3 s: ${changes.slice(0, 12).join(', ')} ...`);
    } finally {
      await app.close();
      await hook.close();
    }
  });

  it('a receiver that accepts and never answers (egress blackholed in CI) costs app.close() one short attempt, not the 5 s flush bound', async (t) => {
    const hook = await receiver(() => 'hang');
    const app = await TestApp.start({
      health: {
        connections: [{ name: 'job', kind: 'custom', ping: async () => undefined, heartbeat: { intervalMs: 300, timeoutMs: 150, jitter: 0 } }],
        publishers: [new WebhookPublisher({ url: hook.url, throttle: false })],
      },
    });
    try {
      await app.waitForState('job', 'up', 3_000);
      await sleep(200);
      const started = performance.now();
      await app.close();
      const ms = Math.round(performance.now() - started);
      t.diagnostic(`app.close() took ${ms} ms`);
      assert.ok(ms < 2_500, `app.close() took ${ms} ms: a Jest afterAll (5 s) fails`);
    } finally {
      await hook.close();
    }
  });

  it("'exit' policy: the `failed` alert answered 503 once (a transient error, a 429) is retried within the exit's bound, and delivered", async () => {
    let failedSeen = 0;
    const hook = await receiver((body) => (body.to === 'failed' && ++failedSeen === 1 ? 503 : 200));
    const fixture = path.join(root, '.build', 'test', 'fixtures', 'exit-publish.app.js');
    const started = performance.now();
    const child = spawn(process.execPath, [fixture, hook.url, String(await refusedPort())], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      const [code] = await once(child, 'exit');
      const ms = Math.round(performance.now() - started);
      assert.equal(code, 3, output);
      const tries = hook.received.filter((r) => r.body.to === 'failed').map((r) => r.status);
      assert.ok(tries.includes(200), `the failed alert was tried ${tries.length} time(s) (${tries.join(', ')}), never delivered; the child exited after ${ms} ms; it logged:\n${output}`);
    } finally {
      clearTimeout(timer);
      await hook.close();
    }
  });
});
