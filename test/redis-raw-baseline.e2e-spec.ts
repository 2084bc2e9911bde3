/**
 * What ioredis does BY ITSELF, with its default options, on the issue's faults: the raw client's baseline
 * that the Redis kind must beat (as BENCHMARKS.md records it for pg, imapflow, node-imap and stompjs).
 * No code of the package runs here: these tests pin the library's behaviour, so a new ioredis that changes
 * it fails one and the issue note's figures get measured again. Bounds are generous (2-core machine, other
 * runs beside); the figures themselves are printed as diagnostics.
 *
 * Three clients per fault, used as an app uses them: one that only waits (and issues a PING once the fault
 * is in), one in SUBSCRIBE mode, one blocked in BLPOP (timeout 0).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { NetworkNamespace } from './kit/network-namespace.js';
import { RedisServer } from './kit/redis.server.js';

type Usage = 'waiting' | 'subscriber' | 'blpop';
const USAGES: readonly Usage[] = ['waiting', 'subscriber', 'blpop'];
/** How long a silent fault is watched for any report; the benchmark watches 60 s (nothing comes then either). */
const SILENT_WATCH_MS = 5_000;
/** A loss ioredis does see (a FIN, an RST) must be reported within this. */
const NOTICE_MS = 1_000;
/** Reconnect and resend once the server answers again: ioredis' retry delay is at most 2 s by default. */
const RECOVER_MS = 5_000;

interface Seen {
  name: string;
  /** performance.now() */
  at: number;
  detail: string;
}

interface Settled {
  at: number;
  value?: unknown;
  error?: string;
}

/** One ioredis client with default options, used one way, and everything it reported. */
class Watched {
  readonly seen: Seen[] = [];
  readonly messages: string[] = [];
  /** The command in flight over the fault: PING (waiting, subscriber) or the BLPOP itself. */
  pending: Promise<unknown> | undefined;
  settled: Settled | undefined;

  private constructor(
    readonly usage: Usage,
    readonly client: Redis,
  ) {
    for (const name of ['close', 'end', 'reconnecting', 'ready'] as const) {
      client.on(name, (arg: unknown) => this.seen.push({ name, at: performance.now(), detail: arg === undefined ? '' : String(arg) }));
    }
    client.on('error', (error: Error) => this.seen.push({ name: 'error', at: performance.now(), detail: error.message }));
    client.on('message', (_channel: string, message: string) => this.messages.push(message));
  }

  static async connect(usage: Usage, host: string, port: number): Promise<Watched> {
    const watched = new Watched(usage, new Redis({ host, port }));
    await new Promise((resolve) => watched.client.once('ready', resolve));
    if (usage === 'subscriber') await watched.client.subscribe(CHANNEL);
    if (usage === 'blpop') watched.track(watched.client.blpop(LIST, 0));
    return watched;
  }

  /** After the fault is in: the waiting and subscribed clients send a PING (SUBSCRIBE mode allows it). */
  sendPing(): void {
    if (this.usage !== 'blpop') this.track(this.client.ping());
  }

  /** The first report of the loss (an 'error', 'close' or 'end' event) at or after `since`. */
  firstLoss(since: number): Seen | undefined {
    return this.seen.find((seen) => seen.at >= since && ['error', 'close', 'end'].includes(seen.name));
  }

  firstAfter(name: string, since: number): Seen | undefined {
    return this.seen.find((seen) => seen.name === name && seen.at >= since);
  }

  close(): void {
    this.client.disconnect();
  }

  private track(command: Promise<unknown>): void {
    this.pending = command.then(
      (value) => void (this.settled = { at: performance.now(), value }),
      (error: Error) => void (this.settled = { at: performance.now(), error: `${error.name}: ${error.message}` }),
    );
  }
}

const CHANNEL = 'baseline.news';
const LIST = 'baseline.jobs';

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    assert.ok(performance.now() < deadline, `${what}: not within ${timeoutMs} ms`);
    await sleep(10);
  }
}

const ms = (value: number) => Math.round(value);

function describeRun(t: TestContext, fault: string, clients: Watched[], faultAt: number): void {
  for (const watched of clients) {
    const loss = watched.firstLoss(faultAt);
    const events = watched.seen.filter((seen) => seen.at >= faultAt).map((seen) => `${ms(seen.at - faultAt)} ${seen.name}${seen.detail ? ` (${seen.detail})` : ''}`);
    const settled = watched.settled ? `${ms(watched.settled.at - faultAt)} ms ${watched.settled.error ?? JSON.stringify(watched.settled.value)}` : 'pending';
    t.diagnostic(`${fault} · ${watched.usage}: first report ${loss ? `${ms(loss.at - faultAt)} ms '${loss.name}'` : 'none'}; command ${settled}; events ${events.slice(0, 8).join(', ')}${events.length > 8 ? ` ... (${events.length})` : ''}`);
  }
}

/**
 * After recovery each usage works again: PING answers, a message published after the reconnect arrives (the
 * caller publishes it, see publishUntilReceived), BLPOP takes a pushed job.
 */
async function assertRecovered(server: RedisServer, clients: Watched[], since: number): Promise<void> {
  for (const watched of clients) {
    await waitFor(() => watched.firstAfter('ready', since) !== undefined, RECOVER_MS, `${watched.usage} reconnected by itself`);
    if (watched.usage === 'subscriber') {
      // autoResubscribe: the channel is subscribed again on the new connection.
      await waitFor(() => watched.messages.length > 0, RECOVER_MS, 'subscriber receives a message published after the reconnect');
    }
  }
  for (const watched of clients) {
    if (watched.usage === 'blpop') {
      // autoResendUnfulfilledCommands: the BLPOP was sent again on the new connection and takes this job.
      await server.command('RPUSH', LIST, 'job');
    }
    await waitFor(() => watched.settled !== undefined, RECOVER_MS, `${watched.usage}'s command completes after the reconnect`);
    assert.equal(watched.settled!.error, undefined, `${watched.usage}'s command failed: ${watched.settled!.error}`);
    assert.deepEqual(watched.settled!.value, watched.usage === 'blpop' ? [LIST, 'job'] : watched.usage === 'subscriber' ? ['pong', ''] : 'PONG');
  }
}

describe('ioredis 5 with default options (the raw baseline)', () => {
  let server: RedisServer;
  let clients: Watched[] = [];
  let proxies: ChaosProxy[] = [];

  before(async () => (server = await RedisServer.start()));
  after(async () => {
    for (const watched of clients) watched.close();
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await server?.stop();
  });

  /** One client per usage, each directly on the server or behind a chaos proxy of its own; 300 ms to settle. */
  async function connectAll(viaProxy: boolean): Promise<{ clients: Watched[]; proxies: ChaosProxy[] }> {
    for (const watched of clients) watched.close();
    await Promise.all(proxies.map((proxy) => proxy.close()));
    // A kill test that failed before its restart must not fail every test after it.
    if (!server.isRunning()) await server.startAgain();
    await server.command('DEL', LIST);
    proxies = viaProxy ? await Promise.all(USAGES.map(() => ChaosProxy.start(server.host, server.port))) : [];
    clients = await Promise.all(USAGES.map((usage, i) => Watched.connect(usage, proxies[i]?.host ?? server.host, proxies[i]?.port ?? server.port)));
    await sleep(300);
    return { clients, proxies };
  }

  /** PUBLISH from the kit's own connection, repeated until every subscriber has one (its resubscribe may lag). */
  async function publishUntilReceived(): Promise<void> {
    const subscribers = clients.filter((w) => w.usage === 'subscriber');
    const deadline = performance.now() + RECOVER_MS;
    while (subscribers.some((w) => w.messages.length === 0) && performance.now() < deadline) {
      await server.command('PUBLISH', CHANNEL, 'hello');
      await sleep(50);
    }
  }

  it('kill -9: reported at once (close, or error ECONNRESET); reconnects with backoff; commands wait and complete after the restart', async (t) => {
    const { clients } = await connectAll(false);
    const faultAt = performance.now();
    await server.kill();
    for (const watched of clients) watched.sendPing();
    await sleep(1_500);
    for (const watched of clients) {
      const loss = watched.firstLoss(faultAt);
      assert.ok(loss && loss.at - faultAt < NOTICE_MS, `${watched.usage}: loss reported within ${NOTICE_MS} ms`);
      assert.ok(watched.firstAfter('reconnecting', faultAt), `${watched.usage}: retries by itself`);
      // The offline queue and autoResendUnfulfilledCommands hold the command: nothing rejects while retries last.
      assert.equal(watched.settled, undefined, `${watched.usage}: command still pending while the server is down`);
    }
    const backAt = performance.now();
    await server.startAgain();
    const recovery = publishUntilReceived();
    await assertRecovered(server, clients, backAt);
    await recovery;
    describeRun(t, 'kill', clients, faultAt);
  });

  it('kill -9 for longer than 20 retries (about 10 s): every pending command rejects with MaxRetriesPerRequestError', async (t) => {
    const { clients } = await connectAll(false);
    const faultAt = performance.now();
    await server.kill();
    for (const watched of clients) watched.sendPing();
    try {
      // Retry delays min(n x 50, 2000) ms: 20 retries take 50 x (1 + ... + 20) = 10.5 s, plus the refused connects.
      await waitFor(() => clients.every((w) => w.settled !== undefined), 30_000, 'every pending command settles');
    } finally {
      await server.startAgain();
    }
    for (const watched of clients) {
      const after = watched.settled!.at - faultAt;
      assert.match(watched.settled!.error ?? '', /MaxRetriesPerRequestError/, `${watched.usage}: ${watched.settled!.error}`);
      assert.ok(after > 8_000 && after < 25_000, `${watched.usage}: rejected after ${ms(after)} ms`);
    }
    describeRun(t, 'kill held 10 s+', clients, faultAt);
    // And the client is not given up on: it reconnects once the server is back.
    for (const watched of clients) await waitFor(() => watched.client.status === 'ready', RECOVER_MS, `${watched.usage} ready again`);
  });

  it('CLIENT KILL (server-side kick): close with no error, reconnects within ms; the subscription and the BLPOP are remade', async (t) => {
    const { clients } = await connectAll(false);
    const faultAt = performance.now();
    assert.equal(await server.clientKill(), clients.length);
    for (const watched of clients) watched.sendPing();
    const recovery = publishUntilReceived();
    await assertRecovered(server, clients, faultAt);
    await recovery;
    for (const watched of clients) {
      const loss = watched.firstLoss(faultAt);
      assert.ok(loss && loss.at - faultAt < NOTICE_MS, `${watched.usage}: kick reported within ${NOTICE_MS} ms`);
      assert.equal(loss.name, 'close');
      assert.equal(watched.firstAfter('error', faultAt), undefined, `${watched.usage}: a kick raises no 'error'`);
    }
    describeRun(t, 'CLIENT KILL', clients, faultAt);
  });

  it('RST (chaos proxy reset): error ECONNRESET or close at once, reconnects, commands complete', async (t) => {
    const { clients, proxies } = await connectAll(true);
    const faultAt = performance.now();
    for (const proxy of proxies) proxy.reset();
    for (const watched of clients) watched.sendPing();
    const recovery = publishUntilReceived();
    await assertRecovered(server, clients, faultAt);
    await recovery;
    for (const watched of clients) {
      const loss = watched.firstLoss(faultAt);
      assert.ok(loss && loss.at - faultAt < NOTICE_MS, `${watched.usage}: reset reported within ${NOTICE_MS} ms`);
    }
    describeRun(t, 'RST', clients, faultAt);
  });

  it(`blackhole (chaos proxy swallows every byte): nothing reported in ${SILENT_WATCH_MS / 1_000} s, status stays ready, commands hang`, async (t) => {
    const { clients, proxies } = await connectAll(true);
    const faultAt = performance.now();
    for (const proxy of proxies) proxy.blackhole();
    for (const watched of clients) watched.sendPing();
    await sleep(SILENT_WATCH_MS);
    describeRun(t, 'blackhole', clients, faultAt);
    for (const watched of clients) {
      assert.equal(watched.firstLoss(faultAt), undefined, `${watched.usage}: reported nothing`);
      assert.equal(watched.client.status, 'ready', `${watched.usage}: still reads ready`);
      assert.equal(watched.settled, undefined, `${watched.usage}: command still pending`);
    }
  });

  it('after a proxy blackhole is lifted, the connection lives on with one reply short: the next command gets the wrong reply', async (t) => {
    // The proxy DROPS the bytes (a real network does not: TCP retransmits them). ioredis matches replies to
    // commands by order only, so a heartbeat lost this way must end its connection, never be waited out.
    const { clients, proxies } = await connectAll(true);
    const waiting = clients.find((w) => w.usage === 'waiting')!;
    await waiting.client.set('baseline.key', 'value');
    proxies[0]!.blackhole();
    waiting.sendPing();
    await sleep(300);
    proxies[0]!.pass();
    const echoed = waiting.client.echo('hello');
    await waitFor(() => waiting.settled !== undefined, RECOVER_MS, 'the PING settles once a later reply comes');
    t.diagnostic(`PING lost in the blackhole resolved with ${JSON.stringify(waiting.settled!.value)}`);
    assert.equal(waiting.settled!.value, 'hello', "the PING takes the ECHO's reply");
    // The ECHO has no reply left; end the connection so it rejects rather than wait forever.
    const orphan = echoed.then(
      () => 'resolved',
      (error: Error) => error.message,
    );
    waiting.close();
    assert.equal(await orphan, 'Connection is closed.');
  });

  it('slow (1 000 ms each way, above any sane PING deadline): nothing reported, every command just takes 2 s', async (t) => {
    const { clients, proxies } = await connectAll(true);
    for (const proxy of proxies) proxy.latency(1_000);
    const faultAt = performance.now();
    for (const watched of clients) watched.sendPing();
    await sleep(SILENT_WATCH_MS);
    describeRun(t, 'slow', clients, faultAt);
    for (const watched of clients) {
      assert.equal(watched.firstLoss(faultAt), undefined, `${watched.usage}: reported nothing`);
      assert.equal(watched.client.status, 'ready');
      if (watched.usage === 'blpop') continue; // blocked, nothing to answer
      const took = watched.settled!.at - faultAt;
      assert.ok(took >= 1_900 && took < SILENT_WATCH_MS, `${watched.usage}: PING took ${ms(took)} ms`);
    }
  });
});

const nsUnsupported = await NetworkNamespace.unsupportedReason();
if (nsUnsupported) console.log(`NetworkNamespace tests skipped: ${nsUnsupported}`);

describe('ioredis 5 with default options: kernel-level blackhole (iptables DROP in a network namespace)', { skip: nsUnsupported }, () => {
  let netns: NetworkNamespace;
  let server: RedisServer;
  let clients: Watched[] = [];

  before(async () => {
    netns = await NetworkNamespace.create();
    server = await RedisServer.start({ netns });
  });
  after(async () => {
    for (const watched of clients) watched.close();
    await server?.stop();
    await netns?.destroy();
  });

  it(`nothing reported in ${SILENT_WATCH_MS / 1_000} s (TCP retransmits, keepalive idles 2 h); after heal the commands complete on the same connection`, async (t) => {
    clients = await Promise.all(USAGES.map((usage) => Watched.connect(usage, server.host, server.port)));
    await sleep(300);
    const faultAt = performance.now();
    await netns.blackhole(server.port);
    for (const watched of clients) watched.sendPing();
    await sleep(SILENT_WATCH_MS);
    for (const watched of clients) {
      assert.equal(watched.firstLoss(faultAt), undefined, `${watched.usage}: reported nothing`);
      assert.equal(watched.client.status, 'ready');
      assert.equal(watched.settled, undefined, `${watched.usage}: command still pending`);
    }
    await netns.heal();
    const healedAt = performance.now();
    // The next retransmission carries the PING: the RTO has backed off to a few seconds by now.
    for (const watched of clients.filter((w) => w.usage !== 'blpop')) {
      await waitFor(() => watched.settled !== undefined, 20_000, `${watched.usage}'s PING completes after heal`);
      assert.equal(watched.settled!.error, undefined);
    }
    await server.command('RPUSH', LIST, 'job');
    const blpop = clients.find((w) => w.usage === 'blpop')!;
    await waitFor(() => blpop.settled !== undefined, 20_000, 'BLPOP takes the job after heal');
    assert.deepEqual(blpop.settled!.value, [LIST, 'job']);
    describeRun(t, 'iptables DROP', clients, faultAt);
    t.diagnostic(`healed at ${ms(healedAt - faultAt)} ms`);
    for (const watched of clients) assert.equal(watched.firstAfter('reconnecting', faultAt), undefined, `${watched.usage}: same connection, no reconnect`);
  });
});
