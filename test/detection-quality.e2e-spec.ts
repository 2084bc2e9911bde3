import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Controller, Get, Header, Module } from '@nestjs/common';
import netKeepAlive from 'net-keepalive';
import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import type { StateChangeEvent } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { NetworkNamespace } from './kit/network-namespace.js';
import { PostgresServer } from './kit/postgres.server.js';
import { sharedPostgres } from './kit/shared-servers.js';
import { TestApp } from './kit/test-app.js';

const now = () => performance.timeOrigin + performance.now();
const pg = (host: string, port: number) => new DataSource({ type: 'postgres', host, port, username: 'postgres', database: 'postgres' });

describe('Prometheus metrics, scraped from a running app during a fault', () => {
  const registry = new Registry();

  @Controller('metrics')
  class MetricsController {
    @Get()
    @Header('Content-Type', registry.contentType)
    metrics() {
      return registry.metrics();
    }
  }
  @Module({ controllers: [MetricsController] })
  class MetricsModule {}

  it('reports state, up, RTT, failed beats, reconnect attempts and the last beat', async (t) => {
    const server = await sharedPostgres();
    const proxy = await ChaosProxy.start(server.host, server.port);
    t.after(() => proxy.close());
    const app = await TestApp.start({
      imports: [MetricsModule],
      health: {
        metrics: { registry },
        connections: [
          {
            name: 'pg',
            kind: 'typeorm',
            dataSource: pg(proxy.host, proxy.port),
            heartbeat: { intervalMs: 300, timeoutMs: 200, connectTimeoutMs: 300 },
            reconnect: { initialDelayMs: 100, maxDelayMs: 200, maxAttempts: Infinity },
          },
        ],
      },
    });
    const scrape = async () => (await fetch(`${app.url}/metrics`)).text();
    const value = (text: string, series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    try {
      await app.waitFor('pg', (s) => (s.lastBeatAt ?? 0) > s.since, 5_000);
      const healthy = await scrape();
      assert.equal(value(healthy, 'connection_health_up{connection="pg",kind="typeorm"}'), 1);
      assert.equal(value(healthy, 'connection_health_state{connection="pg",kind="typeorm",state="up"}'), 1);
      assert.equal(value(healthy, 'connection_health_state{connection="pg",kind="typeorm",state="down"}'), 0);
      assert.ok((value(healthy, 'connection_health_heartbeat_rtt_seconds_count{connection="pg",kind="typeorm"}') ?? 0) >= 1);
      assert.equal(value(healthy, 'connection_health_heartbeat_failures_total{connection="pg",kind="typeorm"}'), 0);
      const lastBeat = value(healthy, 'connection_health_last_heartbeat_timestamp_seconds{connection="pg",kind="typeorm"}') ?? 0;
      assert.ok(Math.abs(lastBeat - Date.now() / 1_000) < 5, `last beat ${lastBeat}`);

      proxy.blackhole();
      await app.waitFor('pg', (s) => s.state === 'reconnecting' || s.state === 'down', 3_000);
      await sleep(500);
      const during = await scrape();
      assert.equal(value(during, 'connection_health_up{connection="pg",kind="typeorm"}'), 0);
      assert.ok((value(during, 'connection_health_heartbeat_failures_total{connection="pg",kind="typeorm"}') ?? 0) >= 1);
      assert.ok((value(during, 'connection_health_reconnect_attempts_total{connection="pg",kind="typeorm"}') ?? 0) >= 1);

      proxy.pass();
      await app.waitForState('pg', 'up', 5_000);
      assert.equal(value(await scrape(), 'connection_health_up{connection="pg",kind="typeorm"}'), 1);
    } finally {
      await app.close();
    }
  });
});

describe('TCP keepalive tuning of a held socket', () => {
  let server: Server;
  let port = 0;
  before(async () => {
    server = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sets idle, interval, count and TCP_USER_TIMEOUT, read back from the kernel', async () => {
    const app = await TestApp.start({
      health: {
        connections: [
          { name: 'relay', kind: 'tcp', mode: 'hold', host: '127.0.0.1', port, keepAlive: { idleMs: 70_000, intervalMs: 3_000, count: 4, userTimeoutMs: 9_000 } },
        ],
      },
    });
    try {
      await app.waitForState('relay', 'up', 2_000);
      const socket = app.registry.get('relay').client<Socket>();
      assert.ok(socket, 'the held socket is the live client');
      assert.equal(netKeepAlive.getKeepAliveInterval(socket), 3_000);
      assert.equal(netKeepAlive.getKeepAliveProbes(socket), 4);
      assert.equal(netKeepAlive.getUserTimeout(socket), 9_000);
      // The idle time, as the kernel's keepalive timer shows it for this very socket ("1min9sec"; an idle
      // above a minute keeps clear of the "6.984ms" that ss 6.1 prints for 6.984 s).
      const { stdout } = await promisify(execFile)('ss', ['-tno', 'state', 'established', `( sport = :${socket.localPort} )`]);
      const timer = /timer:\(keepalive,(\d+)min(\d+)sec/.exec(stdout);
      assert.ok(timer, stdout);
      const seconds = Number(timer[1]) * 60 + Number(timer[2]);
      assert.ok(seconds > 60 && seconds <= 70, `keepalive timer ${seconds} s, idle 70 s`);
    } finally {
      await app.close();
    }
  });
});

describe('adaptive suspicion on a server that slows down (chaos proxy latency below the deadline)', () => {
  it('reads degraded when beats take far longer than their history, up when they answer, never down', async (t) => {
    const server = await sharedPostgres();
    const proxy = await ChaosProxy.start(server.host, server.port);
    t.after(() => proxy.close());
    const app = await TestApp.start({
      health: {
        connections: [
          {
            name: 'pg',
            kind: 'typeorm',
            dataSource: pg(proxy.host, proxy.port),
            heartbeat: { intervalMs: 950, timeoutMs: 900 },
            suspicion: { minStdDevMs: 20 }, // suspect a ~1 ms beat after ~105 ms, or ~300 ms if the first beats were slow
          },
        ],
      },
    });
    const transitions: string[] = [];
    try {
      await app.waitFor('pg', (s) => (s.lastBeatAt ?? 0) > s.since, 5_000);
      await sleep(6_000); // a history of fast round trips
      app.registry.get('pg').events$.subscribe((event) => event.type === 'state' && transitions.push(`${event.from}->${event.to}`));
      proxy.latency(250); // a beat now takes ~500 ms: suspected well before, answered well before 900 ms
      const suspected = await app.waitForState('pg', 'degraded', 3_000);
      t.diagnostic(`suspected: ${suspected.snapshot.reason}`);
      await app.waitForState('pg', 'up', 3_000);
      proxy.pass();
      await sleep(1_000);
      assert.ok(transitions.includes('up->degraded') && transitions.includes('degraded->up'), transitions.join(', '));
      assert.ok(!transitions.some((step) => step.endsWith('->down')), transitions.join(', '));
      const reason = /heartbeat unanswered after (\d+) ms, usually [\d.]+ ms \(phi >= 8\)/.exec(suspected.snapshot.reason);
      assert.ok(reason, suspected.snapshot.reason);
      assert.ok(Number(reason[1]) < 200, `suspected after ${reason[1]} ms: the connection's minStdDevMs of 20 applies`);
    } finally {
      await app.close();
    }
  });
});

describe('adaptive suspicion under 30% random packet loss (iptables statistic in a network namespace)', async () => {
  const reason = await NetworkNamespace.unsupportedReason();
  let namespace: NetworkNamespace;
  let server: PostgresServer;
  before(async () => {
    if (reason) return;
    namespace = await NetworkNamespace.create();
    server = await PostgresServer.start({ netns: namespace });
  });
  after(async () => {
    await server?.stop();
    await namespace?.destroy();
  });

  // Skipped only where the kernel or the user forbids namespaces; CI runs as root and runs it.
  it('goes degraded but never down while TCP recovers every loss; a real outage still goes down within its bound', { skip: reason }, async (t) => {
    // Beats on the probe connection are not independent: a segment in its fourth retransmission (RTO 200 +
    // 400 + 800 + 1 600 ms) stalls the connection for 3 s, and the confirming beats queue behind it. With a
    // 900 ms deadline such a stall (0.3^4 per segment, several segments a beat) read down in about a third
    // of the runs; at 1 500 ms three failed beats need a stall past 5.5 s, a fifth retransmission in a row.
    const heartbeat = { intervalMs: 2_000, timeoutMs: 1_500, failureThreshold: 3, connectTimeoutMs: 3_000 };
    const boundMs = heartbeat.intervalMs + heartbeat.failureThreshold * heartbeat.timeoutMs;
    const app = await TestApp.start({
      health: { connections: [{ name: 'pg', kind: 'typeorm', dataSource: pg(server.host, server.port), heartbeat, reconnect: { initialDelayMs: 200, maxDelayMs: 1_000, maxAttempts: Infinity } }] },
    });
    const transitions: StateChangeEvent[] = [];
    try {
      await app.waitFor('pg', (s) => (s.lastBeatAt ?? 0) > s.since, 10_000);
      await sleep(3_000); // a history of healthy round trips
      app.registry.get('pg').events$.subscribe((event) => event.type === 'state' && transitions.push(event));
      await namespace.loss(server.port, 0.3);
      await sleep(20_000);
      await namespace.heal();
      const summary = transitions.map((e) => `${e.from}->${e.to}${e.to === 'down' ? ` (${e.reason})` : ''}`);
      t.diagnostic(`30% loss for 20 s: ${summary.filter((s) => s === 'up->degraded').length} suspicion(s), transitions: ${summary.join(', ') || 'none'}`);
      assert.ok(!transitions.some((e) => e.to === 'down'), `no flapping to down: ${summary.join(', ')}`);
      await app.waitForState('pg', 'up', 10_000);

      const outageAt = now();
      await namespace.blackhole(server.port);
      const { elapsedMs } = await app.waitForState('pg', 'down', boundMs + 5_000, outageAt);
      t.diagnostic(`outage: down after ${elapsedMs} ms (bound ${boundMs} ms)`);
      assert.ok(elapsedMs <= boundMs + 1_000, `down after ${elapsedMs} ms, bound ${boundMs} ms`);
      await namespace.heal();
      await app.waitForState('pg', 'up', 15_000);
    } finally {
      await app.close();
    }
  });
});
