/**
 * The `openTelemetry` option with the real OpenTelemetry SDK (sdk-metrics and sdk-trace-base 2.12, the
 * newest for Node 20) and its in-memory exporters, over a real TypeORM connection to PostgreSQL that is
 * killed and started again: the metrics read back with their values and attributes, a span per state
 * change with its event, the global providers or ones passed in, nothing (and one log line) where the app
 * registered no provider, nothing left after app.close(), no configured secret in any output; and beside
 * prom-client, the same series as Prometheus sees them through the OpenTelemetry Prometheus exporter.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { metrics, trace } from '@opentelemetry/api';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { ConnectionHealthModuleOptions } from '../lib/index.js';
import { RTT_BUCKETS, STATES } from '../lib/metrics/metric-set.js';
import { messages } from '../lib/core/messages.js';
import type { PostgresServer } from './kit/postgres.server.js';
import { RecordingLogger } from './kit/recording-logger.js';
import { sharedPostgres } from './kit/shared-servers.js';
import { activeHandles, leakedHandles, TestApp } from './kit/test-app.js';

const SECRET = 'otel-billing-key-5mX9qT2';
const beat = {
  heartbeat: { intervalMs: 500, timeoutMs: 300, connectTimeoutMs: 1_000 },
  reconnect: { initialDelayMs: 200, maxDelayMs: 1_000, maxAttempts: Infinity },
};

/** The app's SDK as a test holds it: a MeterProvider read on demand and a TracerProvider kept in memory. */
class Sdk {
  readonly metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // A long interval: every reading here is a forceFlush(), an on-demand collection.
  readonly reader = new PeriodicExportingMetricReader({ exporter: this.metricExporter, exportIntervalMillis: 3_600_000 });
  readonly meterProvider = new MeterProvider({ readers: [this.reader] });
  readonly spanExporter = new InMemorySpanExporter();
  readonly tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(this.spanExporter)] });

  /** One collection, as an exporter would get it. */
  async collect(): Promise<ResourceMetrics> {
    this.metricExporter.reset();
    await this.reader.forceFlush();
    const collected = this.metricExporter.getMetrics();
    assert.equal(collected.length, 1);
    return collected[0]!;
  }

  async metrics(): Promise<Map<string, MetricData>> {
    const collected = await this.collect();
    return new Map(collected.scopeMetrics.flatMap((scope) => scope.metrics.map((metric) => [metric.descriptor.name, metric] as const)));
  }

  /** The package's state-change spans, as (connection, from, to) lines. */
  transitions(connection: string): string[] {
    return this.spans(connection).map((span) => {
      const change = span.events[0]!.attributes!;
      return `${String(change['from'])} -> ${String(change['to'])}`;
    });
  }

  spans(connection: string): ReadableSpan[] {
    return this.spanExporter.getFinishedSpans().filter((span) => span.attributes['connection'] === connection);
  }

  shutdown(): Promise<unknown> {
    return Promise.all([this.meterProvider.shutdown(), this.tracerProvider.shutdown()]);
  }
}

/** The single value of a counter or gauge series with these attributes. */
/**
 * The first transition after the start: `idle -> connecting` is seen or not depending on the order in which
 * Nest runs the bootstrap hooks (the monitors start in one, the meter and tracer are taken in another).
 */
function firstConnect(transitions: readonly string[]): string | undefined {
  return transitions[0] === 'idle -> connecting' ? transitions[1] : transitions[0];
}

function valueOf(metric: MetricData | undefined, attributes: Record<string, string>): unknown {
  assert.ok(metric, 'metric missing');
  const points = metric.dataPoints.filter((point) => Object.entries(attributes).every(([key, value]) => point.attributes[key] === value));
  assert.equal(points.length, 1, `${metric.descriptor.name} ${JSON.stringify(attributes)}: ${points.length} points`);
  return points[0]!.value;
}

function pgDataSource(server: PostgresServer): DataSource {
  return new DataSource({ type: 'postgres', host: server.host, port: server.port, username: 'postgres', database: 'postgres' });
}

/** A custom connection whose ping uses an API key, which its failure message carries: what `secrets` is for. */
function billingApi(dataSource: DataSource) {
  return {
    name: 'billing',
    kind: 'custom' as const,
    ...beat,
    ping: async () => {
      try {
        await dataSource.query('SELECT 1');
      } catch (error) {
        throw new Error(`billing lookup with key ${SECRET} failed: ${(error as Error).message}`);
      }
    },
  };
}

/** Kills PostgreSQL until `names` are down and have tried to reconnect, then starts it again and waits until they are up. */
async function outage(app: TestApp, server: PostgresServer, names: readonly string[]): Promise<void> {
  await server.kill();
  try {
    await Promise.all(names.map((name) => app.waitFor(name, (s) => s.reconnectAttempts >= 1, 15_000)));
    await sleep(500);
  } finally {
    await server.startAgain();
  }
  await Promise.all(names.map((name) => app.waitFor(name, (s) => s.state === 'up' && s.reconnectAttempts === 0, 20_000)));
  // One answered beat after the recovery, so the histogram and the timestamp move after the fault too.
  await Promise.all(names.map((name) => app.waitFor(name, (s) => s.state === 'up' && (s.lastBeatAt ?? 0) > s.since, 5_000)));
}

/** Ends PostgreSQL's sessions server-side (no restart needed) and waits until `name` has reconnected. */
async function terminated(app: TestApp, server: PostgresServer, name: string): Promise<void> {
  const attempts = app.snapshot(name).reconnectAttempts;
  assert.equal(attempts, 0);
  // Watched from before the fault: the reconnect may be over before the termination's answer comes back.
  const reconnecting = app.waitFor(name, (s) => s.state === 'reconnecting', 15_000);
  await server.terminateBackends();
  await reconnecting;
  await app.waitFor(name, (s) => s.state === 'up' && s.reconnectAttempts === 0, 15_000);
}

/** Series of a Prometheus exposition: name -> sorted label names, without what the OpenTelemetry exporter adds about its scope. */
function series(exposition: string): Map<string, string> {
  const found = new Map<string, Set<string>>();
  for (const line of exposition.split('\n')) {
    const sample = /^(\w+)(?:\{(.*)\})? \S+$/.exec(line);
    if (!sample || sample[1] === 'target_info') continue;
    const names = found.get(sample[1]!) ?? new Set<string>();
    for (const [, label] of (sample[2] ?? '').matchAll(/(\w+)="(?:[^"\\]|\\.)*"/g)) if (!label!.startsWith('otel_scope_')) names.add(label!);
    found.set(sample[1]!, names);
  }
  return new Map([...found].map(([name, labels]) => [name, [...labels].sort().join(',')]));
}

/** Sample lines of one metric family with the scope labels taken out, sorted: comparable across the two exporters. */
function samples(exposition: string, family: string): string[] {
  return exposition
    .split('\n')
    .filter((line) => line.startsWith(`${family}_`) || line.startsWith(`${family}{`) || line.startsWith(`${family} `))
    .map((line) => line.replace(/,?otel_scope_\w+="[^"]*"/g, '').replace('{,', '{'))
    .sort();
}

/** After a describe: its app, its data source, its SDK, and the globals, so that the next one starts with no provider. */
async function closeAll(app: TestApp | undefined, dataSource: DataSource | undefined, sdk: Sdk): Promise<void> {
  await app?.close();
  await dataSource?.destroy().catch(() => undefined);
  await sdk.shutdown();
  metrics.disable();
  trace.disable();
}

describe('OpenTelemetry over a real PostgreSQL outage', () => {
  let server: PostgresServer;
  before(async () => {
    server = await sharedPostgres();
    // Every test starts with no global provider, as a process does before its SDK starts.
    metrics.disable();
    trace.disable();
  });
  after(() => {
    metrics.disable();
    trace.disable();
  });

  describe('providers passed in, beside prom-client, with a configured secret', () => {
    const sdk = new Sdk();
    const registry = new Registry();
    let dataSource: DataSource;
    let app: TestApp;
    let baseline: Record<string, number>;
    let promDuring: string;
    let otelDuring: string;

    before(async () => {
      baseline = activeHandles();
      dataSource = pgDataSource(server);
      const health: ConnectionHealthModuleOptions = {
        connections: [{ name: 'pg', kind: 'typeorm', dataSource, ...beat }, billingApi(dataSource)],
        metrics: { registry },
        openTelemetry: { meterProvider: sdk.meterProvider, tracerProvider: sdk.tracerProvider },
        secrets: [SECRET],
      };
      app = await TestApp.start({ health });
      await Promise.all(['pg', 'billing'].map((name) => app.waitFor(name, (s) => s.lastBeatAt !== undefined, 10_000)));
      await outage(app, server, ['pg', 'billing']);
      promDuring = await registry.metrics();
      otelDuring = new PrometheusSerializer().serialize(await sdk.collect());
    });
    after(async () => {
      await app?.close();
      await sdk.shutdown();
    });

    it('leaves the globals alone: the API still hands out its no-op providers', () => {
      assert.equal(metrics.getMeterProvider().getMeter('x').constructor.name, 'NoopMeter');
      assert.equal((trace.getTracerProvider() as unknown as { getDelegateTracer(name: string): unknown }).getDelegateTracer('x'), undefined);
    });

    it('reads back every metric with its value and attributes', async () => {
      const read = await sdk.metrics();
      const pg = { connection: 'pg', kind: 'typeorm' };
      const snapshot = app.snapshot('pg');
      assert.deepEqual([...read.keys()].sort(), [
        'connection_health_figure',
        'connection_health_heartbeat_failures_total',
        'connection_health_heartbeat_rtt_seconds',
        'connection_health_last_heartbeat_timestamp_seconds',
        'connection_health_reconnect_attempts_total',
        'connection_health_state',
        'connection_health_up',
      ]);
      for (const state of STATES) assert.equal(valueOf(read.get('connection_health_state'), { ...pg, state }), state === snapshot.state ? 1 : 0, state);
      assert.equal(snapshot.state, 'up');
      assert.equal(valueOf(read.get('connection_health_up'), pg), 1);
      const lastBeat = valueOf(read.get('connection_health_last_heartbeat_timestamp_seconds'), pg) as number;
      // A beat may land between the collection and this snapshot.
      assert.ok(lastBeat <= snapshot.lastBeatAt! / 1_000 && lastBeat > snapshot.since / 1_000, `${lastBeat} vs ${snapshot.lastBeatAt! / 1_000}`);
      assert.equal(read.get('connection_health_last_heartbeat_timestamp_seconds')!.descriptor.unit, 's');
      const figures = Object.keys(snapshot.figures ?? {});
      assert.ok(figures.length > 0, 'the typeorm adapter measures its pool');
      for (const figure of figures) assert.equal(typeof valueOf(read.get('connection_health_figure'), { ...pg, figure }), 'number', figure);

      const transitions = sdk.transitions('pg');
      const attempts = transitions.filter((t) => t.endsWith('-> reconnecting')).length;
      assert.ok(attempts >= 1, transitions.join(', '));
      assert.equal(valueOf(read.get('connection_health_reconnect_attempts_total'), pg), attempts);
      // PostgreSQL's loss reaches the typeorm adapter as a closed connection; the custom ping fails its beats.
      assert.equal(typeof valueOf(read.get('connection_health_heartbeat_failures_total'), pg), 'number');
      assert.ok((valueOf(read.get('connection_health_heartbeat_failures_total'), { connection: 'billing', kind: 'custom' }) as number) >= 1);
      const rtt = read.get('connection_health_heartbeat_rtt_seconds')!;
      assert.equal(rtt.dataPointType, DataPointType.HISTOGRAM);
      assert.equal(rtt.descriptor.unit, 's');
      const histogram = valueOf(rtt, pg) as { count: number; sum: number; buckets: { boundaries: number[]; counts: number[] } };
      assert.deepEqual(histogram.buckets.boundaries, RTT_BUCKETS);
      assert.ok(histogram.count >= 2, `count ${histogram.count}`);
      assert.equal(histogram.buckets.counts.reduce((a, b) => a + b, 0), histogram.count);
    });

    it('makes a span per state change, with the change as its event', () => {
      const transitions = sdk.transitions('pg');
      assert.equal(firstConnect(transitions), 'connecting -> up', transitions.join(', '));
      assert.ok(transitions.includes('up -> down') || transitions.includes('degraded -> down'), transitions.join(', '));
      assert.equal(transitions.at(-1)!.endsWith('-> up'), true, transitions.join(', '));
      for (const span of sdk.spans('pg')) {
        const change = span.events[0]!;
        assert.equal(span.events.length, 1);
        assert.equal(change.name, 'connection_health.state_change');
        assert.equal(span.name, `connection pg ${String(change.attributes!['to'])}`);
        assert.deepEqual(span.attributes, { connection: 'pg', kind: 'typeorm' });
        assert.equal(span.parentSpanContext, undefined, 'a root span');
        assert.equal(span.instrumentationScope.name, 'nestjs-connection-health');
        assert.deepEqual(Object.keys(change.attributes!).sort(), ['connection', 'from', 'reason', 'to']);
        assert.equal(typeof change.attributes!['reason'], 'string');
        // Status ERROR marks the changes an operator looks for.
        assert.equal(span.status.code, change.attributes!['to'] === 'down' ? 2 : 0);
      }
    });

    it('scrubs a configured secret from the reasons it sends, and sends it nowhere else', async () => {
      const reasons = sdk.spans('billing').map((span) => String(span.events[0]!.attributes!['reason']));
      const failed = reasons.filter((reason) => reason.includes('billing lookup with key'));
      assert.ok(failed.length >= 1, reasons.join(' | '));
      for (const reason of failed) assert.match(reason, /billing lookup with key \*\*\* failed/);
      const everything = JSON.stringify({ spans: sdk.spanExporter.getFinishedSpans().map((s) => [s.name, s.attributes, s.events, s.status]), metrics: await sdk.collect() });
      assert.equal(everything.includes(SECRET), false);
      assert.equal(otelDuring.includes(SECRET), false);
    });

    it('beside prom-client: the Prometheus exporter shows the same series, names and labels, so the fleet rules and dashboard read either', () => {
      const prom = series(promDuring);
      const otel = series(otelDuring);
      assert.deepEqual([...prom.keys()].sort(), [
        'connection_health_figure',
        'connection_health_heartbeat_failures_total',
        'connection_health_heartbeat_rtt_seconds_bucket',
        'connection_health_heartbeat_rtt_seconds_count',
        'connection_health_heartbeat_rtt_seconds_sum',
        'connection_health_last_heartbeat_timestamp_seconds',
        'connection_health_reconnect_attempts_total',
        'connection_health_state',
        'connection_health_up',
      ]);
      assert.deepEqual(otel, prom);
      // Same bucket bounds, as Prometheus' histogram_quantile() reads them.
      const le = (text: string) => [...new Set([...text.matchAll(/connection_health_heartbeat_rtt_seconds_bucket\{[^}]*le="([^"]+)"/g)].map((m) => m[1]))].sort();
      assert.deepEqual(le(otelDuring), le(promDuring));
    });

    it('stops at app.close(): no timer or socket left, no subscription, no callback into the app', async () => {
      await app.close();
      // Counters are fed by the same events through both exporters; after close both have stopped.
      const prom = await registry.metrics();
      const otel = new PrometheusSerializer().serialize(await sdk.collect());
      for (const family of ['connection_health_reconnect_attempts_total', 'connection_health_heartbeat_failures_total', 'connection_health_heartbeat_rtt_seconds_count']) {
        assert.deepEqual(samples(otel, family), samples(prom, family), family);
        assert.ok(samples(otel, family).length >= 2, family);
      }
      // The gauges' callback is gone: the SDK repeats their last observation (up), never the closed state now in the snapshot.
      assert.equal(app.snapshot('pg').state, 'closed');
      const read = await sdk.metrics();
      const pg = { connection: 'pg', kind: 'typeorm' };
      assert.equal(valueOf(read.get('connection_health_state'), { ...pg, state: 'closed' }), 0);
      assert.equal(valueOf(read.get('connection_health_state'), { ...pg, state: 'up' }), 1);
      assert.equal(valueOf(read.get('connection_health_up'), pg), 1);
      const spans = sdk.spanExporter.getFinishedSpans().length;
      await sleep(1_000);
      assert.equal(sdk.spanExporter.getFinishedSpans().length, spans);
      assert.deepEqual(leakedHandles(baseline), {});
    });
  });

  describe('the global providers, registered by the app during its own init', () => {
    const sdk = new Sdk();
    let app: TestApp;
    let dataSource: DataSource;

    /** Stands for an SDK that an app's module starts in onModuleInit: later than the package's providers are made. */
    @Injectable()
    class StartsTheSdk implements OnModuleInit {
      onModuleInit(): void {
        assert.equal(metrics.setGlobalMeterProvider(sdk.meterProvider), true);
        assert.equal(trace.setGlobalTracerProvider(sdk.tracerProvider), true);
      }
    }

    before(async () => {
      dataSource = pgDataSource(server);
      app = await TestApp.start({
        health: { connections: [{ name: 'pg', kind: 'typeorm', dataSource, ...beat }], openTelemetry: true },
        providers: [StartsTheSdk],
      });
      await app.waitFor('pg', (s) => s.lastBeatAt !== undefined, 10_000);
      await terminated(app, server, 'pg');
    });
    after(() => closeAll(app, dataSource, sdk));

    it('records through the global MeterProvider and TracerProvider, taken at bootstrap', async () => {
      const read = await sdk.metrics();
      const pg = { connection: 'pg', kind: 'typeorm' };
      const transitions = sdk.transitions('pg');
      const attempts = transitions.filter((t) => t.endsWith('-> reconnecting')).length;
      assert.ok(attempts >= 1, transitions.join(', '));
      assert.equal(valueOf(read.get('connection_health_reconnect_attempts_total'), pg), attempts);
      assert.equal(valueOf(read.get('connection_health_up'), pg), 1);
      assert.equal(valueOf(read.get('connection_health_state'), { ...pg, state: 'up' }), 1);
      assert.equal(firstConnect(transitions), 'connecting -> up', transitions.join(', '));
      assert.equal(transitions.at(-1)!.endsWith('-> up'), true, transitions.join(', '));
    });
  });

  describe('no provider registered', () => {
    const logger = new RecordingLogger();
    const sdk = new Sdk();
    let app: TestApp;
    let dataSource: DataSource;

    before(async () => {
      dataSource = pgDataSource(server);
      app = await TestApp.start({ health: { connections: [{ name: 'pg', kind: 'typeorm', dataSource, ...beat }], openTelemetry: true }, logger });
      await app.waitFor('pg', (s) => s.lastBeatAt !== undefined, 10_000);
      // An SDK started after the app's bootstrap is too late: the package looked once, found none, and stays out.
      metrics.setGlobalMeterProvider(sdk.meterProvider);
      trace.setGlobalTracerProvider(sdk.tracerProvider);
      await terminated(app, server, 'pg');
    });
    after(() => closeAll(app, dataSource, sdk));

    it('says so once in the log, and records nothing', async () => {
      const lines = logger.lines.filter((line) => line.message.includes('openTelemetry'));
      assert.deepEqual(lines, [{ level: 'warn', message: messages.openTelemetryNoMeterProvider(false), context: 'ConnectionHealth' }]);
      sdk.metricExporter.reset();
      await sdk.reader.forceFlush();
      // The reader exports nothing at all when no instrument exists.
      assert.deepEqual(sdk.metricExporter.getMetrics().flatMap((collected) => collected.scopeMetrics), []);
      assert.deepEqual(sdk.spanExporter.getFinishedSpans(), []);
    });
  });
});
