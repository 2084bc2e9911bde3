import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { ConnectionHealthModule } from '../lib/index.js';
import type { HealthControllerOptions } from '../lib/interfaces/health-controller-options.interface.js';
import { ConnectionHealthStatusPage } from '../lib/status-page/connection-health.status-page.js';
import { PostgresServer } from './kit/postgres.server.js';
import { freePort } from './kit/process.util.js';
import { activeHandles, TestApp } from './kit/test-app.js';

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const README_IMAGE = fileURLToPath(new URL('../../sample/status-page.png', import.meta.url));

/** A custom connection whose ping fails on demand, with a reason and a target that only 'full' may show. */
function ledger() {
  const control = { healthy: true };
  const definition = {
    name: 'ledger',
    kind: 'custom' as const,
    target: 'ledger.internal:9999',
    ping: async () => {
      if (!control.healthy) throw new Error('ledger refused: marker-reason-7f3a <img src=x onerror=alert(1)>');
    },
    heartbeat: { intervalMs: 200, timeoutMs: 150 },
    reconnect: { initialDelayMs: 100, maxDelayMs: 300, maxAttempts: Infinity },
  };
  return { control, definition };
}

interface Served {
  app: INestApplication;
  url: string;
}

async function serve(
  adapter: 'express' | 'fastify',
  healthController: HealthControllerOptions,
  connections: object[],
  shutdown?: { drainDelayMs: number },
): Promise<Served> {
  @Module({ imports: [ConnectionHealthModule.forRoot({ connections: connections as never, healthController, ...(shutdown ? { shutdown } : {}) })] })
  class AppModule {}
  const app =
    adapter === 'fastify'
      ? await NestFactory.create(AppModule, new (await import('@nestjs/platform-fastify')).FastifyAdapter(), { logger: false, abortOnError: false })
      : await NestFactory.create(AppModule, { logger: false, abortOnError: false });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}` };
}

async function get(url: string): Promise<{ status: number; headers: Headers; body: string }> {
  const response = await fetch(url, { headers: { connection: 'close' } });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

interface Stream {
  response: IncomingMessage;
  /** The first `view` event's data. */
  first: { status: string; html: string };
  ended: Promise<void>;
}

/** Opens the SSE stream with plain node:http and resolves once its first view has arrived. */
function openStream(url: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers: { accept: 'text/event-stream' } }, (response) => {
      if (response.statusCode !== 200) return reject(new Error(`stream answered ${response.statusCode}`));
      let text = '';
      let resolved = false;
      const ended = new Promise<void>((done) => response.on('close', () => done()));
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
        const match = /event: view\ndata: (.*)\n\n/.exec(text);
        if (match && !resolved) {
          resolved = true;
          resolve({ response, first: JSON.parse(match[1]!), ended });
        }
      });
    });
    request.on('error', reject);
  });
}

/** The page's stream state, read through its private fields: what a leak would leave behind. */
function streamsOf(app: INestApplication): { size: number; keepAlive: unknown } {
  const streams = (app.get(ConnectionHealthStatusPage) as unknown as { streams: { size: number; keepAlive: unknown } }).streams;
  return { size: streams.size, keepAlive: streams.keepAlive };
}

async function until(condition: () => boolean | Promise<boolean>, withinMs: number, what: string): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${withinMs} ms`);
    await sleep(25);
  }
}

describe('status page: routes, details, streams (node:http clients)', () => {
  it('ui off (the default): /health/ui is 404 and no status page is provided, so nothing subscribes', async () => {
    const { app, url } = await serve('express', { details: 'full' }, [ledger().definition]);
    try {
      assert.equal((await get(`${url}/health/ui`)).status, 404);
      assert.equal((await get(`${url}/health/ui/events`)).status, 404);
      assert.throws(() => app.get(ConnectionHealthStatusPage), /ConnectionHealthStatusPage/);
    } finally {
      await app.close();
    }
  });

  it('serves the page under its own strict CSP whose hashes match the inline script and style', async () => {
    const { app, url } = await serve('express', { details: 'full', ui: true }, [ledger().definition]);
    try {
      const page = await get(`${url}/health/ui`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type')!, /^text\/html/);
      const csp = page.headers.get('content-security-policy')!;
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /connect-src 'self'/);
      const { createHash } = await import('node:crypto');
      const hashOf = (tag: string) => {
        const text = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(page.body)![1]!;
        return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
      };
      assert.ok(csp.includes(`script-src ${hashOf('script')}`), csp);
      assert.ok(csp.includes(`style-src ${hashOf('style')}`), csp);
      assert.doesNotMatch(page.body, /\sstyle=/, 'a strict CSP refuses style attributes');
      assert.doesNotMatch(page.body, /<(script|link|img)[^>]+(src|href)=/, 'no external asset');
    } finally {
      await app.close();
    }
  });

  for (const details of ['full', 'status', 'none'] as const) {
    it(`details '${details}': the page and its stream show what the level allows, and no more`, async () => {
      const { control, definition } = ledger();
      const { app, url } = await serve('express', { details, ui: true }, [definition]);
      try {
        await sleep(500); // a few answered beats
        control.healthy = false;
        await until(async () => (await get(`${url}/health`)).status === 503, 5_000, 'ledger down');
        const page = (await get(`${url}/health/ui`)).body;
        const stream = await openStream(`${url}/health/ui/events`);
        stream.response.destroy();
        assert.equal(stream.first.status, 'error');
        assert.match(page, /id="overall" class="badge o-error">error</);
        for (const html of [page, stream.first.html]) {
          const show = (text: RegExp, shown: boolean) => (shown ? assert.match(html, text) : assert.doesNotMatch(html, text));
          show(/marker-reason-7f3a/, details === 'full'); // reasons and the last error
          show(/ledger\.internal/, details === 'full'); // the target
          show(/data-connection="ledger"/, details !== 'none');
          show(/<svg class="spark"/, details !== 'none');
          show(/&rarr;/, details !== 'none'); // the timeline
          show(/required/, details !== 'none');
          if (details === 'none') assert.doesNotMatch(html, /ledger/);
          assert.doesNotMatch(html, /<img/, 'a reason is text, never markup');
          show(/&#60;img src=x/, details === 'full');
        }
      } finally {
        await app.close();
      }
    });
  }

  for (const adapter of ['express', 'fastify'] as const) {
    // Without a drain the streams end just before the HTTP server closes: the case where a stream ended but
    // not awaited leaves its keep-alive socket to Express' keepAliveTimeout (5 s).
    for (const drainDelayMs of [0, 1_000]) {
      it(`${adapter}, drain ${drainDelayMs} ms: an open stream holds neither the drain nor app.close(); the client sees it end`, async () => {
        const { app, url } = await serve(adapter, { ui: true }, [ledger().definition], { drainDelayMs });
        const stream = await openStream(`${url}/health/ui/events`);
        assert.equal(stream.first.status, 'ok');
        const started = performance.now();
        const limit = new AbortController();
        const held = sleep(drainDelayMs + 5_000, undefined, { signal: limit.signal }).then(() => {
          throw new Error(`app.close() still pending after ${drainDelayMs + 5_000} ms: the open stream holds it`);
        });
        await Promise.race([app.close().finally(() => limit.abort()), held.catch((error: Error) => (error.name === 'AbortError' ? undefined : Promise.reject(error)))]);
        const tookMs = performance.now() - started;
        await stream.ended;
        // Held, it never resolves; ended without waiting for 'close', Express waits out its 5 s keepAliveTimeout.
        assert.ok(tookMs >= drainDelayMs - 50, `app.close() took ${Math.round(tookMs)} ms: the drain was kept`);
        assert.ok(tookMs < drainDelayMs + 2_000, `app.close() took ${Math.round(tookMs)} ms with a ${drainDelayMs} ms drain`);
      });
    }
  }

  it('a client that goes away is forgotten: no stream, no keep-alive timer; streams are bounded', async () => {
    const { app, url } = await serve('express', { ui: true }, [ledger().definition]);
    try {
      const before = activeHandles()['Timeout'] ?? 0;
      const stream = await openStream(`${url}/health/ui/events`);
      assert.deepEqual(streamsOf(app).size, 1);
      assert.notEqual(streamsOf(app).keepAlive, undefined);
      stream.response.destroy();
      await until(() => streamsOf(app).size === 0, 2_000, 'stream forgotten');
      assert.equal(streamsOf(app).keepAlive, undefined);
      assert.ok((activeHandles()['Timeout'] ?? 0) <= before, 'the keep-alive timer is cleared');

      const streams = await Promise.all(Array.from({ length: 32 }, () => openStream(`${url}/health/ui/events`)));
      assert.equal((await get(`${url}/health/ui/events`)).status, 503, 'the 33rd stream is refused');
      for (const open of streams) open.response.destroy();
      await until(() => streamsOf(app).size === 0, 2_000, 'all streams forgotten');
    } finally {
      await app.close();
    }
  });

  it('a watched page renders at most a few views a second, however many connections beat (no render per event)', async () => {
    // 50 connections beating every 100 ms are 500 events a second; a render for each would be 500 renders of all 50.
    const connections = Array.from({ length: 50 }, (_, i) => ({
      name: `c${i}`,
      kind: 'custom' as const,
      ping: async () => undefined,
      heartbeat: { intervalMs: 100, timeoutMs: 80 },
    }));
    const { app, url } = await serve('express', { ui: true }, connections);
    try {
      const stream = await openStream(`${url}/health/ui/events`);
      let views = 0;
      stream.response.on('data', (chunk: string) => (views += chunk.split('event: view\n').length - 1));
      await sleep(2_000);
      stream.response.destroy();
      assert.ok(views >= 1, `the stream went on with the beats: ${views} views in 2 s`);
      assert.ok(views <= 10, `at most a few views a second, not one per event: ${views} views in 2 s`);
    } finally {
      await app.close();
    }
  });

  it('a ui that is not a boolean is refused when forRoot() is called, naming the option', () => {
    assert.throws(
      () => ConnectionHealthModule.forRoot({ healthController: { ui: 'yes' as never } }),
      /ConnectionHealthModule\.forRoot\(\): option "healthController\.ui" is/,
    );
  });

  it('on the management port too: the page, its stream (ended at shutdown), and 404 for the ui routes on the app', async () => {
    const port = await freePort();
    const { app, url } = await serve('express', { ui: true, port, host: '127.0.0.1', details: 'status' }, [ledger().definition]);
    const management = `http://127.0.0.1:${port}`;
    let closed = false;
    try {
      assert.equal((await get(`${url}/health/ui`)).status, 404, 'not a route of the app');
      const page = await get(`${management}/health/ui`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-security-policy')!, /default-src 'none'/);
      assert.match(page.body, /data-connection="ledger"/);
      const stream = await openStream(`${management}/health/ui/events`);
      assert.equal(stream.first.status, 'ok');
      const started = performance.now();
      await app.close();
      closed = true;
      await stream.ended;
      assert.ok(performance.now() - started < 2_000, 'the stream held app.close()');
    } finally {
      if (!closed) await app.close();
    }
  });
});

/** The little of the DOM the predicates read: the tests compile without the DOM's types. */
interface PageGlobals {
  document: {
    querySelector(selector: string): { textContent: string | null; getAttribute(name: string): string | null } | null;
    querySelectorAll(selector: string): { length: number };
  };
}

/** A client that opens the stream, then stops reading: a paused process, a frozen tab, a peer gone without a FIN. */
function stalledClient(port: string, path: string): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
      socket.pause();
      resolve(socket);
    });
    socket.on('error', () => undefined);
  });
}

/** Bytes waiting in user land for the first open stream: past what the kernel took. */
function backlogOf(app: INestApplication): number {
  const streams = (app.get(ConnectionHealthStatusPage) as unknown as { streams: { open: Set<http.ServerResponse> } }).streams;
  return [...streams.open][0]?.writableLength ?? 0;
}

describe('status page (review): a reader that stops, and the first transitions', () => {
  for (const adapter of ['express', 'fastify'] as const) {
    it(`${adapter}: a stream whose client stopped reading holds neither app.close() nor crashes the process after it`, async () => {
      const uncaught: Error[] = [];
      const onUncaught = (error: Error) => uncaught.push(error);
      process.on('uncaughtException', onUncaught);
      // 60 connections make a view large enough to fill the kernel's buffers (about 4 MB on loopback) within seconds.
      const many = Array.from({ length: 60 }, (_, i) => ({ name: `filler-${i}`, kind: 'custom' as const, ping: async () => undefined, heartbeat: { intervalMs: 50, timeoutMs: 40 } }));
      const { app, url } = await serve(adapter, { ui: true }, many);
      const socket = await stalledClient(new URL(url).port, '/health/ui/events');
      try {
        await until(() => backlogOf(app) > 0, 60_000, 'bytes waiting for the stalled reader');
        assert.ok(backlogOf(app) < 1 << 20, 'under maxPendingBytes, so the stream is not cut before the shutdown');
        const started = Date.now();
        let closed = false;
        const closing = app.close().then(() => (closed = true));
        // DESIGN.md's bound is drain (0) + deadline (10 s by default) + 1 s; the stream must take far less.
        await Promise.race([closing, sleep(8_000)]);
        assert.ok(closed, `app.close() still pending ${Date.now() - started} ms after it began: the stalled stream holds it`);
        // A keep-alive tick after the end was a write after end, thrown out of a timer.
        await sleep(500);
        assert.deepEqual(uncaught.map((error) => error.message), []);
      } finally {
        socket.destroy();
        process.off('uncaughtException', onUncaught);
      }
    });
  }

  it("the timeline holds each connection's first transitions, from before the page's own bootstrap hook", async () => {
    const { definition } = ledger();
    const { app, url } = await serve('express', { ui: true, details: 'full' }, [definition]);
    try {
      await until(async () => (await get(`${url}/health`)).status === 200, 5_000, 'ledger up');
      const { body } = await get(`${url}/health/ui`);
      const timeline = /<ol class="timeline"[^>]*>(.*?)<\/ol>/.exec(body)?.[1] ?? '';
      // Newest first: connecting -> up, then idle -> connecting.
      assert.deepEqual([...timeline.matchAll(/badge s-(\w+)/g)].map((match) => match[1]), ['connecting', 'up', 'idle', 'connecting']);
    } finally {
      await app.close();
    }
  });
});

describe('status page in headless Chromium, over a real PostgreSQL fault', () => {
  let server: PostgresServer;
  before(async () => (server = await PostgresServer.start()));
  after(async () => server?.stop());

  it('shows the database down, then up again, live and without a reload, with no CSP violation', async (t) => {
    const { chromium } = createRequire(import.meta.url)('playwright-core') as typeof import('playwright-core');
    const dataSource = new DataSource({ type: 'postgres', host: server.host, port: server.port, username: 'postgres', database: 'postgres' });
    const app = await TestApp.start({
      healthController: { details: 'full', ui: true },
      health: {
        connections: [
          {
            name: 'orders-db',
            kind: 'typeorm',
            dataSource,
            heartbeat: { intervalMs: 1_000, timeoutMs: 500, connectTimeoutMs: 1_000 },
            reconnect: { initialDelayMs: 200, maxDelayMs: 1_000, maxAttempts: Infinity },
          },
        ],
      },
    });
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true });
    try {
      await app.waitFor('orders-db', (s) => s.lastBeatAt !== undefined, 10_000);
      const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
      const logged: string[] = [];
      page.on('console', (message) => logged.push(`${message.type()}: ${message.text()}`));
      page.on('pageerror', (error) => logged.push(`pageerror: ${error.message}`));
      await page.goto(`${app.url}/health/ui`);
      // Evaluated through the debugger protocol, which the page's CSP does not govern; waitForFunction's
      // predicates are functions (a string would be eval'd in the page, which its CSP rightly refuses).
      await page.evaluate(`window.loadedOnce = true; window.violations = [];
        document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective + ': ' + e.blockedURI));`);
      await page.waitForSelector('#live.live-on');
      const state = () => page.getAttribute('section[data-connection="orders-db"]', 'data-state');
      const overall = () => page.textContent('#overall');
      await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.querySelectorAll('.spark polyline').length > 0);
      assert.equal(await state(), 'up');
      assert.equal(await overall(), 'ok');
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}status-page-up.png`, fullPage: true });

      await server.kill();
      await page.waitForFunction(
        () => {
          const { document } = globalThis as unknown as PageGlobals;
          const state = document.querySelector('section[data-connection="orders-db"]')?.getAttribute('data-state') ?? '';
          return document.querySelector('#overall')?.textContent === 'error' && /^(down|reconnecting|failed)$/.test(state);
        },
        undefined,
        { timeout: 15_000 },
      );
      assert.match((await state())!, /^(down|reconnecting|failed)$/);
      const downText = (await page.textContent('section[data-connection="orders-db"]'))!;
      t.diagnostic(`page while down: ${downText.slice(0, 200)}`);
      await page.screenshot({ path: `${ARTIFACTS}status-page-down.png`, fullPage: true });

      await server.startAgain();
      await page.waitForFunction(
        () => {
          const { document } = globalThis as unknown as PageGlobals;
          const state = document.querySelector('section[data-connection="orders-db"]')?.getAttribute('data-state');
          return state === 'up' && document.querySelector('#overall')?.textContent === 'ok';
        },
        undefined,
        { timeout: 20_000 },
      );
      await sleep(4_000); // a few answered beats after the outage, for the picture
      await page.screenshot({ path: `${ARTIFACTS}status-page-recovered.png`, fullPage: true });
      if (process.env['UPDATE_SCREENSHOTS'] === '1') await page.screenshot({ path: README_IMAGE, fullPage: true });

      assert.equal(await page.evaluate('window.loadedOnce'), true, 'the page was not reloaded');
      const timeline = (await page.textContent('section[data-connection="orders-db"] .timeline'))!;
      assert.match(timeline, /up\s*→\s*down/, 'the timeline holds the outage');
      assert.deepEqual(await page.evaluate('window.violations'), []);
      assert.deepEqual(
        logged.filter((line) => /Content Security Policy|violates|pageerror/i.test(line)),
        [],
        'no CSP violation or script error in the console',
      );
    } finally {
      await browser.close();
      if (!server.isRunning()) await server.startAgain();
      await app.close();
    }
  });
});
