import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Subscription } from 'rxjs';
import { loadPeer } from '../adapters/load-peer.js';
import type { ConnectionSnapshot } from '../core/connection-snapshot.js';
import { isServing } from '../core/connection-state.js';
import { CONNECTION_HEALTH_OPTIONS } from '../connection-health.constants.js';
import type { ConnectionHealthModuleOptions } from '../interfaces/connection-health-options.interface.js';
import type { MetricsOptions } from '../interfaces/metrics-options.interface.js';
import { ConnectionHealthRegistry } from '../registry/connection-health.registry.js';
import { HELP, RTT_BUCKETS, STATES } from './metric-set.js';

type PromClient = typeof import('prom-client');

interface Metrics {
  state: Gauge<'connection' | 'kind' | 'state'>;
  up: Gauge<'connection' | 'kind'>;
  rtt: Histogram<'connection' | 'kind'>;
  failures: Counter<'connection' | 'kind'>;
  attempts: Counter<'connection' | 'kind'>;
  lastBeat: Gauge<'connection' | 'kind'>;
  figure: Gauge<'connection' | 'kind' | 'figure'>;
}

/**
 * Prometheus metrics of every connection, fed by its events (no work at scrape time). Off unless `metrics`
 * is given; prom-client is an optional peer, loaded then.
 */
@Injectable()
export class ConnectionHealthMetrics implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly subscriptions: Subscription[] = [];
  /** Only the metrics part of the module's options is kept: the rest holds credentials. */
  private readonly options?: MetricsOptions;

  constructor(
    @Inject(CONNECTION_HEALTH_OPTIONS) options: ConnectionHealthModuleOptions,
    private readonly registry: ConnectionHealthRegistry,
  ) {
    this.options = options.metrics;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.options) return;
    const prom = await loadPeer<PromClient>('prom-client', 'Prometheus metrics (the metrics option)');
    // The option's type is the package's own so that its declarations need no prom-client; what an app passes is a prom-client Registry.
    const registry = (this.options.registry as Registry | undefined) ?? prom.register;
    const metrics = createMetrics(prom, registry, this.options.prefix ?? 'connection_health_');
    for (const handle of this.registry.all()) {
      const snapshot = handle.snapshot();
      // Names come from the app's code: never scrubbed, so a password that is a common word cannot rename a series.
      const labels = { connection: handle.name, kind: snapshot.kind };
      setState(metrics, labels, snapshot);
      metrics.failures.inc(labels, 0); // present from the start, so rate() works from the first failure
      metrics.attempts.inc(labels, 0);
      this.subscriptions.push(
        handle.events$.subscribe((event) => {
          if (event.type === 'state') {
            setState(metrics, labels, event.snapshot);
            if (event.to === 'reconnecting') metrics.attempts.inc(labels);
          } else if (event.ok) {
            metrics.rtt.observe(labels, (event.rttMs ?? 0) / 1_000);
            metrics.lastBeat.set(labels, event.at / 1_000);
            for (const [figure, value] of Object.entries(event.snapshot.figures ?? {})) metrics.figure.set({ ...labels, figure }, value);
          } else {
            metrics.failures.inc(labels);
          }
        }),
      );
    }
  }

  onModuleDestroy(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
  }
}

function setState(metrics: Metrics, labels: { connection: string; kind: string }, snapshot: ConnectionSnapshot): void {
  for (const state of STATES) metrics.state.set({ ...labels, state }, state === snapshot.state ? 1 : 0);
  metrics.up.set(labels, isServing(snapshot.state) ? 1 : 0);
}

function createMetrics(prom: PromClient, registry: Registry, prefix: string): Metrics {
  // A second app in the same process (tests, workers) finds the metrics already registered.
  const reuse = <T>(name: string, create: () => T): T => (registry.getSingleMetric(`${prefix}${name}`) as T | undefined) ?? create();
  const common = { registers: [registry], labelNames: ['connection', 'kind'] as const };
  return {
    state: reuse('state', () => new prom.Gauge({ ...common, name: `${prefix}state`, help: HELP.state, labelNames: ['connection', 'kind', 'state'] as const })),
    up: reuse('up', () => new prom.Gauge({ ...common, name: `${prefix}up`, help: HELP.up })),
    rtt: reuse('heartbeat_rtt_seconds', () => new prom.Histogram({ ...common, name: `${prefix}heartbeat_rtt_seconds`, help: HELP.rtt, buckets: RTT_BUCKETS })),
    failures: reuse('heartbeat_failures_total', () => new prom.Counter({ ...common, name: `${prefix}heartbeat_failures_total`, help: HELP.failures })),
    attempts: reuse('reconnect_attempts_total', () => new prom.Counter({ ...common, name: `${prefix}reconnect_attempts_total`, help: HELP.attempts })),
    figure: reuse('figure', () => new prom.Gauge({ ...common, name: `${prefix}figure`, help: HELP.figure, labelNames: ['connection', 'kind', 'figure'] as const })),
    lastBeat: reuse('last_heartbeat_timestamp_seconds', () => new prom.Gauge({ ...common, name: `${prefix}last_heartbeat_timestamp_seconds`, help: HELP.lastBeat })),
  };
}
