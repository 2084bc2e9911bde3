import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Subscription } from 'rxjs';
import { loadPeer } from '../adapters/load-peer.js';
import type { ConnectionSnapshot } from '../core/connection-snapshot.js';
import { isServing, type ConnectionState } from '../core/connection-state.js';
import { CONNECTION_HEALTH_OPTIONS } from '../connection-health.constants.js';
import type { ConnectionHealthModuleOptions } from '../interfaces/connection-health-options.interface.js';
import type { MetricsOptions } from '../interfaces/metrics-options.interface.js';
import { ConnectionHealthRegistry } from '../registry/connection-health.registry.js';

type PromClient = typeof import('prom-client');

const STATES: readonly ConnectionState[] = ['idle', 'connecting', 'up', 'degraded', 'down', 'reconnecting', 'failed', 'closing', 'closed'];
/** From a loopback database (~1 ms) to a slow far IMAP server (seconds). */
const RTT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

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
    state: reuse('state', () => new prom.Gauge({ ...common, name: `${prefix}state`, help: 'Current state of the connection: 1 for the state it is in, 0 for the others.', labelNames: ['connection', 'kind', 'state'] as const })),
    up: reuse('up', () => new prom.Gauge({ ...common, name: `${prefix}up`, help: 'Whether the connection is serving (up or degraded): 1 or 0.' })),
    rtt: reuse('heartbeat_rtt_seconds', () => new prom.Histogram({ ...common, name: `${prefix}heartbeat_rtt_seconds`, help: 'Round trip of successful heartbeats.', buckets: RTT_BUCKETS })),
    failures: reuse('heartbeat_failures_total', () => new prom.Counter({ ...common, name: `${prefix}heartbeat_failures_total`, help: 'Heartbeats that failed or missed their deadline.' })),
    attempts: reuse('reconnect_attempts_total', () => new prom.Counter({ ...common, name: `${prefix}reconnect_attempts_total`, help: 'Reconnect attempts started.' })),
    figure: reuse('figure', () => new prom.Gauge({ ...common, name: `${prefix}figure`, help: 'What the adapter measured with the last answered heartbeat, by figure (e.g. poolWaiting: queries waiting for a pooled connection).', labelNames: ['connection', 'kind', 'figure'] as const })),
    lastBeat: reuse('last_heartbeat_timestamp_seconds', () => new prom.Gauge({ ...common, name: `${prefix}last_heartbeat_timestamp_seconds`, help: 'Time of the last successful heartbeat, in seconds since the epoch.' })),
  };
}
