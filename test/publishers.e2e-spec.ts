/**
 * Change publishers against real receivers (node:http in this process) and a real connection (tcp) whose
 * listener goes away and comes back: signed transitions, a receiver that answers 500 or 400, one that
 * never answers, a flapping link, and publishers of a user's that throw, reject or hang.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { LoggerService } from '@nestjs/common';
import ts from 'typescript';
import {
  type ConnectionChange,
  type ConnectionHealthPublisher,
  LogPublisher,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  type WebhookBody,
  WebhookPublisher,
} from '../lib/index.js';
import { TcpListener } from './kit/tcp-listener.js';
import { TestApp, type TestAppOptions } from './kit/test-app.js';

/** A port nothing listens on: a receiver CI cannot reach (connection refused at once). */
async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fast = { heartbeat: { intervalMs: 300, timeoutMs: 150, jitter: 0 }, reconnect: { initialDelayMs: 100, maxDelayMs: 300, maxAttempts: Infinity } };
/** A Slack-style webhook path: the path is the secret. */
const SECRET_PATH = '/services/T0PUBTEST/B0PUBTEST/Zq8xSecretPathToken4711';
const HMAC_SECRET = 'hmac-secret-0f3c9a7e5d1b2468';

interface Received {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly raw: string;
  readonly body: WebhookBody;
}

/** A webhook receiver: answers each POST as `answer` says (a status, or 'hang': never), and keeps what it got. */
class Receiver {
  readonly received: Received[] = [];
  private readonly server: HttpServer;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private answer: number | 'hang' | ((count: number, body: WebhookBody) => number)) {
    this.server = createHttpServer((request, response) => void this.take(request, response));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}${SECRET_PATH}`;
  }

  get openSockets(): number {
    return this.sockets.size;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async until(predicate: (received: Received[]) => boolean, withinMs: number, what: string): Promise<void> {
    const deadline = Date.now() + withinMs;
    while (!predicate(this.received)) {
      assert.ok(Date.now() < deadline, `${what} not seen within ${withinMs} ms; received ${JSON.stringify(this.received.map((r) => r.body.text))}`);
      await sleep(20);
    }
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async take(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of request) raw += String(chunk);
    const body = JSON.parse(raw) as WebhookBody;
    this.received.push({ path: request.url ?? '', headers: request.headers, raw, body });
    if (this.answer === 'hang') return;
    const status = typeof this.answer === 'function' ? this.answer(this.received.length, body) : this.answer;
    response.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
  }
}

/** Keeps every line the app logs, all its arguments included, as text. */
class AllLines implements LoggerService {
  readonly lines: string[] = [];
  private keep = (level: string) => (...args: unknown[]) => void this.lines.push(`${level} ${args.map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg))).join(' ')}`);
  log = this.keep('log');
  error = this.keep('error');
  warn = this.keep('warn');
  fatal = this.keep('fatal');
  debug = this.keep('debug');
  verbose = this.keep('verbose');

  async until(pattern: RegExp, withinMs: number): Promise<string> {
    const deadline = Date.now() + withinMs;
    for (;;) {
      const line = this.lines.find((text) => pattern.test(text));
      if (line) return line;
      assert.ok(Date.now() < deadline, `no log line matching ${pattern} within ${withinMs} ms; lines:\n${this.lines.join('\n')}`);
      await sleep(20);
    }
  }

  /** No line shows the webhook URL's path (nor a piece of it) or the HMAC secret. */
  assertNoSecret(): void {
    for (const secret of [SECRET_PATH, 'Zq8xSecretPathToken4711', 'T0PUBTEST', HMAC_SECRET]) {
      const leaking = this.lines.filter((line) => line.includes(secret));
      assert.deepEqual(leaking, [], `a log line shows ${secret}`);
    }
  }
}

/** Starts the app; should its bootstrap fail, closes the test's servers first, so the file's process can end. */
/** Runs test/fixtures/exit-publish.app.ts: a tcp connection to a refused port whose failure policy is 'exit'. */
async function runExitApp(webhookUrl: string): Promise<{ code: number | null; output: string }> {
  const fixture = path.join(root, '.build', 'test', 'fixtures', 'exit-publish.app.js');
  const child = spawn(process.execPath, [fixture, webhookUrl, String(await refusedPort())], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, output };
  } finally {
    clearTimeout(timer);
  }
}

/** The tcp dependency goes away (its sockets reset) and comes back: the connection reads down, then up again. */
async function outage(app: TestApp, listener: TcpListener): Promise<void> {
  await listener.stop();
  await app.waitForState('smtp', 'down', 3_000);
  await listener.listen();
  await app.waitForState('smtp', 'up', 3_000);
}

async function startOr(cleanup: () => Promise<unknown>, options: TestAppOptions): Promise<TestApp> {
  try {
    return await TestApp.start(options);
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** The README's receiver-side check, compiled from its code block as a user pastes it. */
async function readmeVerifier(): Promise<(secret: string, rawBody: string, signature?: string, timestamp?: string, toleranceSeconds?: number) => boolean> {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const block = readme.split('```ts\n').map((part) => part.split('\n```')[0]!).find((code) => code.includes('export function verifyConnectionHealthSignature'));
  assert.ok(block, 'README.md has a ts block with verifyConnectionHealthSignature');
  const js = ts.transpileModule(block, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText;
  const folder = mkdtempSync(path.join(tmpdir(), 'ch-verify-'));
  try {
    const file = path.join(folder, 'verify.mjs');
    writeFileSync(file, js);
    return ((await import(pathToFileURL(file).href)) as { verifyConnectionHealthSignature: Awaited<ReturnType<typeof readmeVerifier>> }).verifyConnectionHealthSignature;
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

describe('Change publishers against real receivers and a real tcp fault', () => {
  it('the receiver gets every transition, signed so that the README check verifies it, and no log line shows the secrets', async () => {
    const verify = await readmeVerifier();
    const listener = new TcpListener();
    await listener.listen();
    const receiver = await new Receiver(200).start();
    const logs = new AllLines();
    const app = await startOr(() => Promise.all([receiver.close(), listener.stop()]), {
      logger: logs,
      health: {
        connections: [{ name: 'smtp', kind: 'tcp', host: '127.0.0.1', port: listener.port, ...fast }],
        publishers: [new WebhookPublisher({ url: receiver.url, secret: HMAC_SECRET, throttle: false }), new LogPublisher()],
      },
    });
    try {
      await app.waitForState('smtp', 'up', 3_000);
      await outage(app, listener);
      await receiver.until((got) => got.some((r) => r.body.to === 'down') && got.at(-1)?.body.to === 'up', 5_000, 'down, then up');

      for (const { path: url, headers, raw, body } of receiver.received) {
        assert.equal(url, SECRET_PATH);
        assert.equal(headers['content-type'], 'application/json');
        assert.ok(verify(HMAC_SECRET, raw, headers[SIGNATURE_HEADER] as string, headers[TIMESTAMP_HEADER] as string), `signature of ${raw}`);
        assert.equal(verify(HMAC_SECRET, raw.replace('"smtp"', '"smtq"'), headers[SIGNATURE_HEADER] as string, headers[TIMESTAMP_HEADER] as string), false);
        assert.equal(verify('another-secret-of-16+', raw, headers[SIGNATURE_HEADER] as string, headers[TIMESTAMP_HEADER] as string), false);
        assert.equal(body.type, 'change');
        assert.equal(body.connection, 'smtp');
        assert.equal(body.kind, 'tcp');
        assert.equal(body.required, true);
        assert.match(body.at, /^\d{4}-\d\d-\d\dT/);
        assert.match(body.text, new RegExp(`^smtp \\(tcp, required\\) is ${body.to}, was ${body.from}`));
      }
      // A replay outside the tolerance is refused.
      const first = receiver.received[0]!;
      const old = String(Number(first.headers[TIMESTAMP_HEADER]) - 600);
      assert.equal(verify(HMAC_SECRET, first.raw, first.headers[SIGNATURE_HEADER] as string, old), false);

      const down = receiver.received.find((r) => r.body.to === 'down')!.body;
      assert.equal(down.from, 'up');
      assert.match(down.reason ?? '', /ECONNREFUSED|refused/);
      // Every transition arrives once, in order: each one starts where the one before ended.
      const states = receiver.received.map((r) => r.body);
      for (let i = 1; i < states.length; i++) assert.equal(states[i]!.from, states[i - 1]!.to, `order at ${i}: ${JSON.stringify(states.map((s) => s.to))}`);
      assert.ok(logs.lines.some((line) => /^warn smtp \(tcp, required\) is down, was up/.test(line)), 'the LogPublisher line of the loss');
    } finally {
      await app.close();
      await receiver.close();
      await listener.stop();
    }
    logs.assertNoSecret();
  });

  it('a receiver that answers 500 gets the retries, then the publisher gives up and logs the origin only; a 400 is not retried', async () => {
    const failing = await new Receiver(500).start();
    const refusing = await new Receiver(400).start();
    const logs = new AllLines();
    const app = await startOr(() => Promise.all([failing.close(), refusing.close()]), {
      logger: logs,
      health: {
        connections: [{ name: 'job', kind: 'custom', ping: async () => undefined, ...fast }],
        publishers: [
          new WebhookPublisher({ name: 'failing', url: failing.url, secret: HMAC_SECRET, retries: 2, retryDelayMs: 50, throttle: false }),
          new WebhookPublisher({ name: 'refusing', url: refusing.url, retries: 2, retryDelayMs: 50, throttle: false }),
        ],
      },
    });
    try {
      await app.waitForState('job', 'up', 3_000);
      const gaveUp = await logs.until(/Publisher "failing" \(http:\/\/127\.0\.0\.1:\d+\) gave up on "job \(custom, required\) is up, was connecting: connected" after 3 attempt\(s\): the receiver answered HTTP 500/, 10_000);
      assert.ok(!gaveUp.includes('/services'), gaveUp);
      await logs.until(/Publisher "refusing" .* gave up on "job \(custom, required\) is up, was connecting: connected" after 1 attempt\(s\): the receiver answered HTTP 400/, 5_000);
      const tries = (receiver: Receiver, to: string) => receiver.received.filter((r) => r.body.to === to).length;
      assert.equal(tries(failing, 'up'), 3, 'the first attempt and 2 retries');
      assert.equal(tries(refusing, 'up'), 1, 'a 4xx other than 408/429 is final');
      // Each retry is signed afresh, and the same body is sent again.
      const ups = failing.received.filter((r) => r.body.to === 'up');
      assert.equal(new Set(ups.map((r) => r.raw)).size, 1);
    } finally {
      await app.close();
      await failing.close();
      await refusing.close();
    }
    logs.assertNoSecret();
  });

  it('a receiver that never answers: the monitor still detects and recovers on time, and app.close() ends within its bound with no socket left', async (t) => {
    const listener = new TcpListener();
    await listener.listen();
    const hanging = await new Receiver('hang').start();
    const logs = new AllLines();
    const shutdownTimeoutMs = 1_500;
    const app = await startOr(() => Promise.all([hanging.close(), listener.stop()]), {
      logger: logs,
      health: {
        shutdown: { timeoutMs: shutdownTimeoutMs },
        connections: [{ name: 'smtp', kind: 'tcp', host: '127.0.0.1', port: listener.port, ...fast }],
        // A long deadline per attempt: at shutdown the flush cuts the POST in flight to its own 2.5 s deadline.
        publishers: [new WebhookPublisher({ url: hanging.url, timeoutMs: 60_000, throttle: false })],
      },
    });
    let closedInMs = 0;
    try {
      await app.waitForState('smtp', 'up', 3_000);
      await hanging.until((got) => got.length >= 1, 3_000, 'a POST');
      const lostAt = performance.timeOrigin + performance.now();
      await listener.stop();
      const down = await app.waitForState('smtp', 'down', 3_000, lostAt);
      // Bound of the tcp probe: intervalMs + timeoutMs = 450 ms, plus a busy machine's margin.
      assert.ok(down.elapsedMs <= 450 + 1_000, `down after ${down.elapsedMs} ms`);
      const backAt = performance.timeOrigin + performance.now();
      await listener.listen();
      const up = await app.waitForState('smtp', 'up', 3_000, backAt);
      assert.ok(up.elapsedMs <= 300 + 450 + 1_000, `up again after ${up.elapsedMs} ms`);
      t.diagnostic(`with the receiver hanging: down after ${down.elapsedMs} ms, up again after ${up.elapsedMs} ms`);
      assert.equal(hanging.received.length, 1, 'one message at a time: the rest wait behind the hanging one');
      assert.equal(hanging.openSockets, 1);
    } finally {
      const started = performance.now();
      await app.close();
      closedInMs = performance.now() - started;
    }
    try {
      assert.ok(closedInMs < shutdownTimeoutMs + 2_000, `app.close() took ${Math.round(closedInMs)} ms`);
      t.diagnostic(`app.close() took ${Math.round(closedInMs)} ms with shutdown.timeoutMs ${shutdownTimeoutMs} and a POST in flight`);
      // The flush bound (what is left of shutdown.timeoutMs, 1.5 s) comes before the attempt's 2.5 s: it cuts the POST.
      await logs.until(/publishing task\(s\) had not finished \d+ ms into shutdown and were aborted/, 1_000);
      const deadline = Date.now() + 2_000;
      while (hanging.openSockets > 0 && Date.now() < deadline) await sleep(20);
      assert.equal(hanging.openSockets, 0, 'the aborted POST closed its socket');
    } finally {
      await hanging.close();
      await listener.stop();
    }
  });

  it('a flapping connection yields a summary, not a storm', async () => {
    const listener = new TcpListener();
    await listener.listen();
    const receiver = await new Receiver(200).start();
    const windowMs = 8_000;
    const app = await startOr(() => Promise.all([receiver.close(), listener.stop()]), {
      health: {
        connections: [{ name: 'smtp', kind: 'tcp', host: '127.0.0.1', port: listener.port, ...fast }],
        publishers: [new WebhookPublisher({ url: receiver.url, throttle: { windowMs, maxPerWindow: 2 } })],
      },
    });
    const startedAt = Date.now();
    const atWork = (state: string) => ['up', 'degraded', 'down', 'reconnecting'].includes(state);
    const seen: string[] = [];
    const subscription = app.registry
      .get('smtp')
      .events$.subscribe((event) => void (event.type === 'state' && atWork(event.from) && atWork(event.to) && (event.from === 'up') !== (event.to === 'up') && seen.push(event.to)));
    try {
      await app.waitForState('smtp', 'up', 3_000);
      for (let flap = 0; flap < 3; flap++) {
        await outage(app, listener);
      }
      assert.ok(Date.now() - startedAt < windowMs, 'the flaps fit in one window (a busy machine may need a rerun)');
      await receiver.until((got) => got.some((r) => r.body.type === 'summary'), windowMs + 3_000, 'a summary');
      await sleep(300);
      // Only changes among up, degraded and lost count; the start-up steps (idle -> connecting -> up) pass without counting.
      const changes = receiver.received.filter((r) => r.body.type === 'change' && atWork(r.body.from) && atWork(r.body.to));
      const summaries = receiver.received.filter((r) => r.body.type === 'summary').map((r) => r.body as WebhookBody & { changes: number; windowMs: number });
      assert.equal(changes.length, 2, `maxPerWindow transitions one by one: ${JSON.stringify(receiver.received.map((r) => `${r.body.type} ${r.body.from}->${r.body.to}`))}`);
      assert.equal(summaries.length, 1);
      const [summary] = summaries;
      assert.ok(seen.length >= 6, `changes of serving-ness seen: ${seen.join(', ')}`);
      assert.ok(summary!.changes >= seen.length, `summary counts ${summary!.changes}, the test saw ${seen.length} after subscribing`);
      assert.equal(summary!.to, 'up');
      assert.equal(summary!.windowMs, windowMs);
      assert.match(summary!.text, new RegExp(`^smtp \\(tcp, required\\) changed state ${summary!.changes} times in the last 8 s, now up`));
    } finally {
      subscription.unsubscribe();
      await app.close();
      await receiver.close();
      await listener.stop();
    }
  });

  it("a user's publisher that throws, rejects or hangs is logged, and the others go on; shutdown is not held", async (t) => {
    const listener = new TcpListener();
    await listener.listen();
    const logs = new AllLines();
    const got: ConnectionChange[] = [];
    let hangingCalls = 0;
    const publishers: ConnectionHealthPublisher[] = [
      {
        name: 'thrower',
        publish: () => {
          throw new Error('thrower broke');
        },
      },
      { name: 'rejecter', publish: async () => Promise.reject(new Error('rejecter broke')) },
      {
        name: 'hanger',
        publish: () => {
          hangingCalls += 1;
          return new Promise(() => undefined);
        },
        flush: () => new Promise(() => undefined),
      },
      { name: 'recorder', publish: (change) => void got.push(change) },
    ];
    const app = await startOr(() => Promise.all([listener.stop()]), {
      logger: logs,
      health: { shutdown: { timeoutMs: 1_000 }, connections: [{ name: 'smtp', kind: 'tcp', host: '127.0.0.1', port: listener.port, ...fast }], publishers },
    });
    let closedInMs = 0;
    try {
      await app.waitForState('smtp', 'up', 3_000);
      await outage(app, listener);
      assert.ok(got.some((change) => change.to === 'down'));
      assert.equal(got.at(-1)?.to, 'up');
      assert.equal(hangingCalls, got.length, 'the hanging publisher is called for every change too');
      await logs.until(/^error Publisher "thrower" threw on a change of connection "smtp" \(thrower broke\); the monitor and the other publishers go on\./, 1_000);
      await logs.until(/^error Publisher "rejecter" rejected on a change of connection "smtp" \(rejecter broke\)/, 1_000);
      // A publisher failing on every transition is logged once a minute, saying how many were left out.
      assert.equal(logs.lines.filter((line) => line.includes('Publisher "thrower"')).length, 1);
    } finally {
      const started = performance.now();
      await app.close();
      closedInMs = performance.now() - started;
      await listener.stop();
    }
    assert.ok(closedInMs < 1_000 + 2_000, `app.close() took ${Math.round(closedInMs)} ms with a publisher that never settles`);
    t.diagnostic(`app.close() took ${Math.round(closedInMs)} ms with shutdown.timeoutMs 1000 and a publisher that never settles`);
    assert.ok(got.some((change) => change.to === 'closed'), 'the last transitions are published at shutdown');
  });

  it("the webhook URL and the HMAC secret are scrubbed from every output, e.g. a reason that quotes them", async () => {
    const receiver = await new Receiver(200).start();
    const logs = new AllLines();
    const app = await startOr(() => Promise.all([receiver.close()]), {
      logger: logs,
      health: {
        connections: [
          {
            name: 'notifier',
            kind: 'custom',
            ping: async () => {
              throw new Error(`POST ${receiver.url} failed, key ${HMAC_SECRET}`);
            },
            ...fast,
          },
        ],
        publishers: [new WebhookPublisher({ url: receiver.url, secret: HMAC_SECRET, throttle: false })],
      },
    });
    try {
      const { snapshot } = await app.waitForState('notifier', 'down', 3_000);
      assert.ok(!snapshot.reason.includes(SECRET_PATH) && !snapshot.reason.includes(HMAC_SECRET), snapshot.reason);
      assert.match(snapshot.reason, /POST \*\*\* failed, key \*\*\*/);
      const body = JSON.stringify((await app.health()).body);
      assert.ok(!body.includes('Zq8xSecretPathToken4711') && !body.includes(HMAC_SECRET), body);
      await receiver.until((got) => got.some((r) => r.body.to === 'down'), 3_000, 'the down transition');
      for (const { raw } of receiver.received) assert.ok(!raw.includes('Zq8xSecretPathToken4711') && !raw.includes(HMAC_SECRET), raw);
    } finally {
      await app.close();
      await receiver.close();
    }
    logs.assertNoSecret();
  });

  it("the 'exit' failure policy: the `failed` transition reaches the webhook before the process exits, past the default throttle and a passing 503", async () => {
    // The first POST of `failed` is answered 503 (a passing error, a rate limit): retried within the exit's bound.
    let failedTries = 0;
    const receiver = await new Receiver((_, body) => (body.to === 'failed' && ++failedTries === 1 ? 503 : 200)).start();
    try {
      const { code, output } = await runExitApp(receiver.url);
      assert.equal(code, 3, output);
      const failed = receiver.received.filter((r) => r.body.to === 'failed');
      assert.equal(failed.length, 2, `the webhook got ${JSON.stringify(receiver.received.map((r) => `${r.body.from}->${r.body.to}`))}; the child logged:\n${output}`);
      assert.equal(failed[1]!.body.type, 'change');
      assert.match(failed[1]!.body.text, /^ledger \(tcp, required\) is failed, was /);
      assert.doesNotMatch(output, /Zq8xSecretPathToken4711/);
    } finally {
      await receiver.close();
    }
  });

  it('a receiver that accepts and never answers (egress blackholed in CI) costs app.close() one short attempt, not the 5 s flush bound', async (t) => {
    const hanging = await new Receiver('hang').start();
    const app = await startOr(() => hanging.close(), {
      health: {
        connections: [{ name: 'job', kind: 'custom', ping: async () => undefined, ...fast }],
        publishers: [new WebhookPublisher({ url: hanging.url, throttle: false })],
      },
    });
    try {
      await app.waitForState('job', 'up', 3_000);
      await hanging.until((got) => got.length >= 1, 3_000, 'a POST in flight');
      const started = performance.now();
      await app.close();
      const ms = Math.round(performance.now() - started);
      t.diagnostic(`app.close() took ${ms} ms`);
      assert.ok(ms < 4_000, `app.close() took ${ms} ms: a Jest afterAll (5 s) fails`);
    } finally {
      await hanging.close();
    }
  });

  it('a connection that flaps up <-> degraded (a ping failing every other beat) yields a summary, not a message per beat', async () => {
    const receiver = await new Receiver(200).start();
    let beats = 0;
    const app = await startOr(() => receiver.close(), {
      health: {
        connections: [
          {
            name: 'pool',
            kind: 'custom',
            // Every other beat fails, below the failure threshold: up -> degraded -> up -> ... (a busy dependency).
            ping: async () => {
              beats += 1;
              if (beats % 2 === 0) throw new Error('busy');
            },
            heartbeat: { intervalMs: 100, timeoutMs: 80, jitter: 0, failureThreshold: 3 },
          },
        ],
        // The default throttle: 3 changes a minute one by one, the rest one summary.
        publishers: [new WebhookPublisher({ url: receiver.url })],
      },
    });
    try {
      await sleep(3_000);
      // The start-up steps (idle -> connecting -> up) pass without counting; the flap counts.
      const changes = receiver.received.filter((r) => r.body.type === 'change' && r.body.from !== 'idle' && r.body.from !== 'connecting');
      assert.ok(beats >= 10, `the ping ran ${beats} times`);
      assert.equal(changes.length, 3, `3 per 60 s: ${JSON.stringify(changes.map((r) => `${r.body.from}->${r.body.to}`))}`);
    } finally {
      await app.close();
      await receiver.close();
    }
  });

  it('a receiver CI cannot reach (connection refused): app.close() does not wait out the flush bound; one attempt, the give-up logged', async (t) => {
    const logs = new AllLines();
    const url = `http://127.0.0.1:${await refusedPort()}${SECRET_PATH}`;
    const app = await TestApp.start({
      logger: logs,
      health: {
        connections: [{ name: 'job', kind: 'custom', ping: async () => undefined, ...fast }],
        // The defaults: 3 retries from 1 s on; the connection's closing and closed wait behind them at shutdown.
        publishers: [new WebhookPublisher({ url, throttle: false })],
      },
    });
    await app.waitForState('job', 'up', 3_000);
    const started = performance.now();
    await app.close();
    const closedInMs = performance.now() - started;
    t.diagnostic(`app.close() took ${Math.round(closedInMs)} ms with an unreachable receiver`);
    assert.ok(closedInMs < 2_500, `app.close() took ${Math.round(closedInMs)} ms`);
    assert.ok(logs.lines.some((line) => /^warn Publisher "webhook" \(http:\/\/127\.0\.0\.1:\d+\) gave up on ".*" after 1 attempt\(s\): .*ECONNREFUSED/.test(line)), logs.lines.join('\n'));
    logs.assertNoSecret();
  });

  it('the README example has no webhook URL to fall back on: a missing ALERT_WEBHOOK_URL stops the bootstrap', () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const block = readme.split('```ts\n').map((part) => part.split('\n```')[0]!).find((code) => code.includes('new WebhookPublisher({ url: process.env.ALERT_WEBHOOK_URL'));
    assert.ok(block, 'README.md has the publishers example');
    assert.doesNotMatch(block, /hooks\.slack\.com/);
    assert.doesNotMatch(block, /ALERT_WEBHOOK_URL \?\?/);
  });
});
