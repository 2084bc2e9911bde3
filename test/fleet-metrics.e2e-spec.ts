/**
 * The Grafana dashboard of sample/deploy/grafana imports as it is (JSON, a datasource variable every query
 * uses), and every metric, label and state the dashboard and the Prometheus rules read is one a real app
 * exposes: a TestApp with `metrics` on, scraped over HTTP at /metrics after its connection has answered a
 * heartbeat.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Controller, Get, Header, Module } from '@nestjs/common';
import { Registry } from 'prom-client';
import { TestApp } from './kit/test-app.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RULES = path.join(root, 'sample/deploy/prometheus/connection-health.rules.yaml');
const DASHBOARD = path.join(root, 'sample/deploy/grafana/connection-health.dashboard.json');
/** Labels Prometheus adds to every scraped series (the target's), and `pod` where Kubernetes discovery adds it. */
const TARGET_LABELS = ['instance', 'job', 'pod'];

const registry = new Registry();

@Controller('metrics')
class MetricsController {
  @Get()
  @Header('Content-Type', registry.contentType)
  metrics(): Promise<string> {
    return registry.metrics();
  }
}

@Module({ controllers: [MetricsController] })
class MetricsModule {}

interface Scrape {
  /** Series names with the label names their samples carry (a histogram's _bucket, _sum and _count apart). */
  labels: Map<string, Set<string>>;
  /** Names declared by `# TYPE` lines: a labelled metric with no sample yet still declares its name. */
  declared: Set<string>;
  /** Values of the `state` label of connection_health_state. */
  states: Set<string>;
}

function parseExposition(text: string): Scrape {
  const scrape: Scrape = { labels: new Map(), declared: new Set(), states: new Set() };
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\w+) (\w+)$/.exec(line);
    if (type) {
      const suffixes = type[2] === 'histogram' ? ['_bucket', '_sum', '_count'] : [''];
      for (const suffix of suffixes) scrape.declared.add(type[1] + suffix);
      continue;
    }
    const sample = /^(\w+)(?:\{(.*)\})? \S+$/.exec(line);
    if (!sample) continue;
    const pairs = [...(sample[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)];
    const names = scrape.labels.get(sample[1]) ?? new Set<string>();
    for (const [, name, value] of pairs) {
      names.add(name);
      if (sample[1] === 'connection_health_state' && name === 'state') scrape.states.add(value);
    }
    scrape.labels.set(sample[1], names);
  }
  return scrape;
}

/** Every `connection_health_...` selector of a PromQL text: the metric and the label names it matches on. */
function selectors(promql: string): Array<{ metric: string; labels: string[] }> {
  return [...promql.matchAll(/\b(connection_health_[a-z_]+)(?:\{([^}]*)\})?/g)].map((m) => ({
    metric: m[1],
    labels: [...(m[2] ?? '').matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]),
  }));
}

interface Dashboard {
  schemaVersion: number;
  uid: string;
  id: null;
  templating: { list: Array<{ name: string; type: string; query: unknown; datasource?: unknown }> };
  panels: Array<{ id: number; type: string; title: string; datasource: unknown; targets: Array<{ expr: string; refId: string; datasource: unknown }> }>;
}

describe('fleet assets: the dashboard and the rules read what the package exposes', () => {
  let app: TestApp;
  let scrape: Scrape;
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
  const rules = readFileSync(RULES, 'utf8');
  const dashboardQueries = dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr));
  const ruleQueries = [...rules.matchAll(/^ {8}expr: (?:\|\n((?: {10}.*\n)+)|(.*)\n)/gm)].map((m) => m[1] ?? m[2]);

  before(async () => {
    app = await TestApp.start({
      health: {
        connections: [{ name: 'orders-db', kind: 'custom', ping: async () => undefined, heartbeat: { intervalMs: 200, timeoutMs: 100 } }],
        metrics: { registry },
      },
      // The app's own /metrics route, the README's controller over its registry.
      imports: [MetricsModule],
    });
    await app.waitFor('orders-db', (s) => s.lastBeatAt !== undefined, 5_000);
    const response = await fetch(`${app.url}/metrics`, { headers: { connection: 'close' } });
    assert.equal(response.status, 200);
    scrape = parseExposition(await response.text());
  });
  after(() => app?.close());

  it('the dashboard is importable JSON: current schema, no id, a Prometheus datasource variable that every panel and query uses', () => {
    assert.equal(dashboard.schemaVersion, 42);
    assert.equal(dashboard.id, null);
    assert.equal(dashboard.uid, 'connection-health');
    assert.deepEqual(
      dashboard.templating.list.map((v) => [v.name, v.type, v.type === 'datasource' ? v.query : (v.query as { query: string }).query]),
      [
        ['datasource', 'datasource', 'prometheus'],
        ['job', 'query', 'label_values(connection_health_up, job)'],
        ['instance', 'query', 'label_values(connection_health_up{job=~"$job"}, instance)'],
        ['connection', 'query', 'label_values(connection_health_up{job=~"$job", instance=~"$instance"}, connection)'],
      ],
    );
    const source = { type: 'prometheus', uid: '${datasource}' };
    for (const variable of dashboard.templating.list.slice(1)) assert.deepEqual(variable.datasource, source, variable.name);
    assert.deepEqual(
      dashboard.panels.map((p) => [p.id, p.type, p.title, p.targets.map((t) => t.refId).join('')]),
      [
        [1, 'state-timeline', 'Serving, per instance and connection', 'A'],
        [2, 'table', 'Current state', 'A'],
        [3, 'timeseries', 'State changes in the last 15 minutes', 'A'],
        [4, 'timeseries', 'Heartbeat round trip (p50, p90, p99)', 'ABC'],
        [5, 'timeseries', 'Reconnect attempts', 'A'],
        [6, 'timeseries', 'Heartbeat failures', 'A'],
        [7, 'timeseries', 'Time since the last answered heartbeat', 'A'],
        [8, 'timeseries', 'Adapter figures', 'A'],
      ],
    );
    for (const panel of dashboard.panels) {
      assert.deepEqual(panel.datasource, source, panel.title);
      for (const target of panel.targets) {
        assert.deepEqual(target.datasource, source, panel.title);
        assert.match(target.expr, /job=~"\$job", instance=~"\$instance", connection=~"\$connection"/, panel.title);
      }
    }
  });

  it('every metric the dashboard and the rules read is in the scrape, with the labels they match on', () => {
    assert.equal(ruleQueries.length, 5);
    const used = [...dashboardQueries, ...ruleQueries].flatMap(selectors);
    assert.deepEqual([...new Set(used.map((s) => s.metric))].sort(), [
      'connection_health_figure',
      'connection_health_heartbeat_failures_total',
      'connection_health_heartbeat_rtt_seconds_bucket',
      'connection_health_last_heartbeat_timestamp_seconds',
      'connection_health_reconnect_attempts_total',
      'connection_health_state',
      'connection_health_up',
    ]);
    const missing = used.filter((s) => !scrape.declared.has(s.metric)).map((s) => s.metric);
    assert.deepEqual(missing, []);
    // The figure gauge has samples only where an adapter measures something (TypeORM's pool): its label names are read from the registered metric.
    const figure = registry.getSingleMetric('connection_health_figure') as unknown as { labelNames: string[] };
    const labelsOf = (metric: string) => (metric === 'connection_health_figure' ? new Set(figure.labelNames) : scrape.labels.get(metric));
    const wrongLabels = used.flatMap((s) => s.labels.filter((label) => !TARGET_LABELS.includes(label) && !labelsOf(s.metric)?.has(label)).map((label) => `${s.metric}{${label}}`));
    assert.deepEqual(wrongLabels, []);
    assert.deepEqual([...labelsOf('connection_health_figure')!].sort(), ['connection', 'figure', 'kind']);
    assert.deepEqual(
      Object.fromEntries([...scrape.labels].filter(([name]) => name.startsWith('connection_health_')).map(([name, labels]) => [name, [...labels].sort()])),
      {
        connection_health_state: ['connection', 'kind', 'state'],
        connection_health_up: ['connection', 'kind'],
        connection_health_heartbeat_rtt_seconds_bucket: ['connection', 'kind', 'le'],
        connection_health_heartbeat_rtt_seconds_sum: ['connection', 'kind'],
        connection_health_heartbeat_rtt_seconds_count: ['connection', 'kind'],
        connection_health_heartbeat_failures_total: ['connection', 'kind'],
        connection_health_reconnect_attempts_total: ['connection', 'kind'],
        connection_health_last_heartbeat_timestamp_seconds: ['connection', 'kind'],
      },
    );
  });

  it('the states the rules name are states the package reports', () => {
    const named = [...rules.matchAll(/state=~"([^"]+)"/g)].flatMap((m) => m[1].split('|'));
    assert.deepEqual(named, ['closing', 'closed', 'down', 'reconnecting', 'failed']);
    assert.deepEqual(
      named.filter((state) => !scrape.states.has(state)),
      [],
    );
    assert.deepEqual([...scrape.states].sort(), ['closed', 'closing', 'connecting', 'degraded', 'down', 'failed', 'idle', 'reconnecting', 'up']);
  });
});
