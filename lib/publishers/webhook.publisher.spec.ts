import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoggerService } from '@nestjs/common';
import { SecretScrubber } from '../core/secret-scrubber.js';
import type { ConnectionChange } from './connection-change.js';
import { ATTACH_PUBLISHER } from './publisher-internals.js';
import { WebhookPublisher, type WebhookBody } from './webhook.publisher.js';

/** A real receiver whose answer to each POST the test sets; it keeps the bodies and when they came. */
const received: Array<{ body: WebhookBody; at: number }> = [];
let answer: (res: ServerResponse, count: number) => void = (res) => res.writeHead(200).end();
const sockets = new Set<Socket>();
const server = createServer((req: IncomingMessage, res) => {
  let raw = '';
  req.on('data', (chunk) => (raw += String(chunk)));
  req.on('end', () => {
    received.push({ body: JSON.parse(raw) as WebhookBody, at: Date.now() });
    answer(res, received.length);
  });
});
server.on('connection', (socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
});
let url = '';

function change(to: ConnectionChange['to'], n = 0): ConnectionChange {
  return { type: 'change', connection: `c${n}`, kind: 'custom', from: 'up', to, at: Date.now(), required: true, reason: `r${n}`, reconnectAttempts: 0 };
}

class Lines implements LoggerService {
  readonly lines: string[] = [];
  log = (message: string) => void this.lines.push(message);
  warn = (message: string) => void this.lines.push(message);
  error = (message: string) => void this.lines.push(message);
}

function publisherWith(options: Partial<ConstructorParameters<typeof WebhookPublisher>[0]>): { publisher: WebhookPublisher; lines: Lines } {
  const publisher = new WebhookPublisher({ url, retryDelayMs: 20, maxRetryDelayMs: 2_000, throttle: false, ...options });
  const lines = new Lines();
  publisher[ATTACH_PUBLISHER]({ logger: lines, scrubber: new SecretScrubber() });
  return { publisher, lines };
}

describe('WebhookPublisher against a real receiver', () => {
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook/secret-path-4711`;
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  it('retries a 429 after its Retry-After, and a 408; flush() resolves once the queue is empty', async () => {
    received.length = 0;
    answer = (res, count) => (count === 1 ? res.writeHead(429, { 'retry-after': '1' }).end() : count === 2 ? res.writeHead(408).end() : res.writeHead(204).end());
    const { publisher, lines } = publisherWith({});
    const shutdown = new AbortController();
    publisher.publish(change('down'), { signal: shutdown.signal });
    // Before the shutdown's flush: a flush gives each message one last attempt, no retry.
    const deadline = Date.now() + 5_000;
    while (received.length < 3 && Date.now() < deadline) await sleep(20);
    await publisher.flush({ signal: shutdown.signal });
    assert.equal(received.length, 3);
    assert.ok(received[1]!.at - received[0]!.at >= 950, `Retry-After honoured: ${received[1]!.at - received[0]!.at} ms`);
    assert.deepEqual(lines.lines, []);
  });

  it('drops the oldest beyond maxQueue, and the next message sent says so', async () => {
    received.length = 0;
    answer = (res) => void setTimeout(() => res.writeHead(200).end(), 100);
    const { publisher, lines } = publisherWith({ maxQueue: 2 });
    const shutdown = new AbortController();
    for (let n = 0; n < 6; n++) publisher.publish(change('down', n), { signal: shutdown.signal });
    await publisher.flush({ signal: shutdown.signal });
    // c0 is in flight at once; c1..c5 queue behind it in a queue of 2: c1, c2 and c3 are dropped.
    assert.deepEqual(received.map((r) => r.body.connection), ['c0', 'c4', 'c5']);
    assert.equal(received[1]!.body.dropped, 3);
    assert.match(received[1]!.body.text, /\(3 older message\(s\) dropped\)$/);
    assert.equal(received[2]!.body.dropped, undefined);
    assert.equal(lines.lines.length, 1);
    assert.match(lines.lines[0]!, /^Publisher "webhook" \(http:\/\/127\.0\.0\.1:\d+\) dropped the 3 oldest message\(s\): more than maxQueue \(2\)/);
  });

  it('sends the summary of a throttled window when it ends, without a flush', async () => {
    received.length = 0;
    answer = (res) => res.writeHead(200).end();
    const { publisher } = publisherWith({ throttle: { windowMs: 300, maxPerWindow: 1 } });
    const shutdown = new AbortController();
    const steps = [['up', 'down'], ['down', 'reconnecting'], ['reconnecting', 'up'], ['up', 'down']] as const;
    for (const [from, to] of steps) publisher.publish({ ...change(to), from }, { signal: shutdown.signal });
    const deadline = Date.now() + 3_000;
    while (received.length < 2 && Date.now() < deadline) await sleep(20);
    assert.deepEqual(received.map((r) => [r.body.type, r.body.to]), [['change', 'down'], ['summary', 'down']]);
    // down <-> reconnecting is no change of serving-ness: folded, not counted.
    assert.match(received[1]!.body.text, /^c0 \(custom, required\) changed state 3 times in the last 300 ms, now down/);
  });

  it('an abort of the shutdown signal cuts a POST in flight, closes its socket and settles flush()', async () => {
    received.length = 0;
    answer = () => undefined; // never answers
    const { publisher, lines } = publisherWith({ timeoutMs: 60_000 });
    const shutdown = new AbortController();
    publisher.publish(change('down'), { signal: shutdown.signal });
    publisher.publish(change('up'), { signal: shutdown.signal });
    while (received.length < 1) await sleep(10);
    const flushed = publisher.flush({ signal: shutdown.signal });
    shutdown.abort();
    await flushed;
    const deadline = Date.now() + 2_000;
    while (sockets.size > 0 && Date.now() < deadline) await sleep(10);
    assert.equal(sockets.size, 0);
    assert.equal(received.length, 1, 'the queued message is dropped, not sent after the abort');
    assert.deepEqual(lines.lines, []);
  });

  it('a timeout is retried, then given up with the origin only', async () => {
    received.length = 0;
    answer = () => undefined;
    const { publisher, lines } = publisherWith({ timeoutMs: 100, retries: 1 });
    const shutdown = new AbortController();
    publisher.publish(change('down'), { signal: shutdown.signal });
    const deadline = Date.now() + 5_000;
    while (lines.lines.length < 1 && Date.now() < deadline) await sleep(20);
    assert.equal(received.length, 2);
    assert.equal(lines.lines.length, 1);
    assert.match(lines.lines[0]!, /^Publisher "webhook" \(http:\/\/127\.0\.0\.1:\d+\) gave up on "c0 \(custom, required\) is down, was up: r0" after 2 attempt\(s\): no answer within 100 ms\./);
    assert.ok(!lines.lines[0]!.includes('secret-path'));
    shutdown.abort();
  });

  it("escapes Slack's markup in `text` (&, <, >), while the structured `reason` stays as it was", async () => {
    received.length = 0;
    answer = (res) => res.writeHead(200).end();
    const { publisher } = publisherWith({});
    const shutdown = new AbortController();
    const reason = 'quota <!channel> see <https://evil.example/x|the docs> & retry > later';
    publisher.publish({ ...change('down'), reason }, { signal: shutdown.signal });
    await publisher.flush({ signal: shutdown.signal });
    assert.equal(received.length, 1);
    assert.equal(received[0]!.body.reason, reason);
    assert.equal(received[0]!.body.text, 'c0 (custom, required) is down, was up: quota &lt;!channel&gt; see &lt;https://evil.example/x|the docs&gt; &amp; retry &gt; later');
    shutdown.abort();
  });

  it('reasons: false leaves the reason out of the body and the text', async () => {
    received.length = 0;
    answer = (res) => res.writeHead(200).end();
    const { publisher } = publisherWith({ reasons: false });
    const shutdown = new AbortController();
    publisher.publish({ ...change('down'), reason: 'connect ECONNREFUSED 10.0.0.7:5432' }, { signal: shutdown.signal });
    await publisher.flush({ signal: shutdown.signal });
    assert.equal(received.length, 1);
    assert.ok(!('reason' in received[0]!.body), JSON.stringify(received[0]!.body));
    assert.equal(received[0]!.body.text, 'c0 (custom, required) is down, was up');
    shutdown.abort();
  });

  it('at flush, a receiver that does not answer gets one short attempt (the one in flight is cut to it), and the flush stops there', async () => {
    received.length = 0;
    answer = () => undefined; // accepts, never answers: egress blackholed
    const { publisher, lines } = publisherWith({ timeoutMs: 60_000, retries: 3, retryDelayMs: 2_000, maxRetryDelayMs: 2_000 });
    const shutdown = new AbortController();
    for (let n = 0; n < 3; n++) publisher.publish(change('down', n), { signal: shutdown.signal });
    const started = Date.now();
    await publisher.flush({ signal: shutdown.signal });
    assert.ok(Date.now() - started < 4_000, `flush took ${Date.now() - started} ms`);
    assert.equal(received.length, 1, 'the receiver is known silent after the first attempt: the rest are not tried');
    assert.equal(lines.lines.length, 1, lines.lines.join('\n'));
    assert.match(lines.lines[0]!, /gave up on "c0 .*" after 1 attempt\(s\): no answer within 2500 ms\. .*2 more message\(s\) not sent/);
    shutdown.abort();
  });

  it('at flush, a receiver that answers 503 is retried until it takes the messages (within the bound the shutdown gives)', async () => {
    received.length = 0;
    let answers = 0;
    answer = (res) => res.writeHead(++answers === 1 ? 503 : 200).end();
    const { publisher, lines } = publisherWith({ retries: 3, retryDelayMs: 200, maxRetryDelayMs: 200 });
    const shutdown = new AbortController();
    for (let n = 0; n < 3; n++) publisher.publish(change('down', n), { signal: shutdown.signal });
    await publisher.flush({ signal: shutdown.signal });
    assert.deepEqual(received.map((r) => r.body.connection), ['c0', 'c0', 'c1', 'c2'], 'c0 answered 503 once, then every message taken');
    assert.deepEqual(lines.lines, []);
    shutdown.abort();
  });

  it('at flush, a receiver that is slow (answers 200 in 1.3 s), not absent, takes every message within the bound', async () => {
    received.length = 0;
    answer = (res) => void setTimeout(() => res.writeHead(200).end(), 1_300); // a cold-start serverless receiver
    const { publisher, lines } = publisherWith({});
    const shutdown = new AbortController();
    const bound = setTimeout(() => shutdown.abort(), 5_000); // MAX_FLUSH_MS, as ConnectionHealthPublishers cuts it
    publisher.publish(change('failed', 0), { signal: shutdown.signal }); // in flight with its own 5 s deadline
    publisher.publish(change('failed', 1), { signal: shutdown.signal });
    await sleep(100);
    await publisher.flush({ signal: shutdown.signal });
    clearTimeout(bound);
    shutdown.abort();
    assert.deepEqual(lines.lines, [], 'a receiver that answers in 1.3 s is treated as absent');
    assert.deepEqual(received.map((r) => r.body.connection), ['c0', 'c1'], 'the failed of c1 is dropped untried');
  });

  it('at flush, a 429 with a Retry-After longer than the bound is retried within the bound, so the failed is not lost', async () => {
    received.length = 0;
    let answers = 0;
    // Slack/Teams rate limit: a 429 with Retry-After, answered while the flush already runs.
    answer = (res) => (++answers === 1 ? void setTimeout(() => res.writeHead(429, { 'retry-after': '30' }).end(), 200) : res.writeHead(200).end());
    const { publisher, lines } = publisherWith({ retryDelayMs: 1_000, maxRetryDelayMs: 30_000 });
    const shutdown = new AbortController();
    const bound = setTimeout(() => shutdown.abort(), 3_000); // the flush bound ConnectionHealthPublishers gives
    publisher.publish(change('failed', 0), { signal: shutdown.signal }); // the exit's failed, in flight
    await sleep(50);
    const started = Date.now();
    await publisher.flush({ signal: shutdown.signal });
    const took = Date.now() - started;
    clearTimeout(bound);
    shutdown.abort();
    assert.equal(received.length, 2, `the failed was retried within the bound (flush took ${took} ms, ${received.length} attempt(s), log: [${lines.lines.join(' | ')}])`);
  });
});
