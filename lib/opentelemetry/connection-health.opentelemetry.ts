import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { Attributes, BatchObservableCallback, Meter, MeterProvider, Observable, ObservableGauge, Tracer, TracerProvider } from '@opentelemetry/api';
import type { Subscription } from 'rxjs';
import { loadPeer } from '../adapters/load-peer.js';
import type { StateChangeEvent } from '../core/connection-event.js';
import { isServing } from '../core/connection-state.js';
import { messages } from '../core/messages.js';
import { CONNECTION_HEALTH_OPTIONS } from '../connection-health.constants.js';
import { OPENTELEMETRY_FEATURE } from '../connection-health.options-check.js';
import type { ConnectionHealthModuleOptions } from '../interfaces/connection-health-options.interface.js';
import type { OpenTelemetryOptions } from '../interfaces/opentelemetry-options.interface.js';
import { ConnectionHealthLogger } from '../logging/connection-health.logger.js';
import { HELP, RTT_BUCKETS, STATES } from '../metrics/metric-set.js';
import type { ConnectionHandle } from '../registry/connection-handle.js';
import { ConnectionHealthRegistry } from '../registry/connection-health.registry.js';

type OtelApi = typeof import('@opentelemetry/api');

/** The instrumentation scope of the meter and the tracer: what the package's data is filed under. */
const SCOPE = 'nestjs-connection-health';

interface Gauges {
  state: ObservableGauge;
  up: ObservableGauge;
  lastBeat: ObservableGauge;
  figure: ObservableGauge;
}

/**
 * The metrics of `metrics`, through @opentelemetry/api (an optional peer, loaded only when `openTelemetry`
 * is given), and a span per state change where the app traces. Counters and the histogram follow events;
 * gauges are observed from snapshots when the app's reader collects, so nothing is done between collections.
 */
@Injectable()
export class ConnectionHealthOpenTelemetry implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly subscriptions: Subscription[] = [];
  /** Only this part of the module's options is kept: the rest holds credentials. */
  private readonly options?: OpenTelemetryOptions;
  private observed?: { meter: Meter; callback: BatchObservableCallback; gauges: Observable[] };

  constructor(
    @Inject(CONNECTION_HEALTH_OPTIONS) options: ConnectionHealthModuleOptions,
    private readonly registry: ConnectionHealthRegistry,
    private readonly logger: ConnectionHealthLogger,
  ) {
    this.options = options.openTelemetry === true ? {} : options.openTelemetry;
  }

  /**
   * Late on purpose: a meter taken from the API's global before the app's SDK registers its provider stays
   * a no-op for good (the API has no proxy meter provider), and main.ts starts the SDK before Nest boots.
   */
  async onApplicationBootstrap(): Promise<void> {
    if (!this.options) return;
    const api = await loadPeer<OtelApi>('@opentelemetry/api', OPENTELEMETRY_FEATURE);
    const meter = meterOf(api, this.options.meterProvider as MeterProvider | undefined);
    const tracer = tracerOf(api, this.options.tracerProvider as TracerProvider | undefined);
    if (!meter) this.logger.warn(messages.openTelemetryNoMeterProvider(tracer !== undefined));
    else if (!tracer) this.logger.debug(messages.openTelemetryNoTracerProvider());
    if (!meter && !tracer) return;

    const handles = this.registry.all();
    const prefix = this.options.prefix ?? 'connection_health_';
    // Counters keep the Prometheus `_total` in their name: the Prometheus exporter adds it only where it is
    // missing, and OTLP ingestion with suffixes off keeps names as they are; the histogram and the timestamp
    // name their unit for the same reason.
    const failures = meter?.createCounter(`${prefix}heartbeat_failures_total`, { description: HELP.failures });
    const attempts = meter?.createCounter(`${prefix}reconnect_attempts_total`, { description: HELP.attempts });
    const rtt = meter?.createHistogram(`${prefix}heartbeat_rtt_seconds`, { description: HELP.rtt, unit: 's', advice: { explicitBucketBoundaries: RTT_BUCKETS } });
    if (meter) this.observeGauges(meter, prefix, handles);

    for (const handle of handles) {
      // Names come from the app's code: never scrubbed, so a password that is a common word cannot rename a series.
      const attributes = { connection: handle.name, kind: handle.snapshot().kind };
      failures?.add(0, attributes); // present from the start, so rate() works from the first failure
      attempts?.add(0, attributes);
      this.subscriptions.push(
        handle.events$.subscribe((event) => {
          if (event.type === 'state') {
            if (event.to === 'reconnecting') attempts?.add(1, attributes);
            if (tracer) spanOf(api, tracer, attributes, event);
          } else if (event.ok) {
            rtt?.record((event.rttMs ?? 0) / 1_000, attributes);
          } else {
            failures?.add(1, attributes);
          }
        }),
      );
    }
  }

  onModuleDestroy(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    // The app's provider outlives this module (tests, a second app): it must stop calling into it.
    if (this.observed) this.observed.meter.removeBatchObservableCallback(this.observed.callback, this.observed.gauges);
    this.observed = undefined;
  }

  private observeGauges(meter: Meter, prefix: string, handles: readonly ConnectionHandle[]): void {
    const gauges: Gauges = {
      state: meter.createObservableGauge(`${prefix}state`, { description: HELP.state }),
      up: meter.createObservableGauge(`${prefix}up`, { description: HELP.up }),
      lastBeat: meter.createObservableGauge(`${prefix}last_heartbeat_timestamp_seconds`, { description: HELP.lastBeat, unit: 's' }),
      figure: meter.createObservableGauge(`${prefix}figure`, { description: HELP.figure }),
    };
    const callback: BatchObservableCallback = (result) => {
      for (const handle of handles) {
        const snapshot = handle.snapshot();
        const attributes = { connection: handle.name, kind: snapshot.kind };
        for (const state of STATES) result.observe(gauges.state, state === snapshot.state ? 1 : 0, { ...attributes, state });
        result.observe(gauges.up, isServing(snapshot.state) ? 1 : 0, attributes);
        if (snapshot.lastBeatAt !== undefined) result.observe(gauges.lastBeat, snapshot.lastBeatAt / 1_000, attributes);
        for (const [figure, value] of Object.entries(snapshot.figures ?? {})) result.observe(gauges.figure, value, { ...attributes, figure });
      }
    };
    const observables = Object.values(gauges);
    meter.addBatchObservableCallback(callback, observables);
    this.observed = { meter, callback, gauges: observables };
  }
}

/** The meter, or undefined where no MeterProvider is registered: the API's global then hands out its no-op meter. */
function meterOf(api: OtelApi, given: MeterProvider | undefined): Meter | undefined {
  const meter = (given ?? api.metrics.getMeterProvider()).getMeter(SCOPE);
  return meter instanceof api.createNoopMeter().constructor ? undefined : meter;
}

/** The tracer, or undefined where the app does not trace: the API's global is a proxy with no delegate then. */
function tracerOf(api: OtelApi, given: TracerProvider | undefined): Tracer | undefined {
  const provider = given ?? api.trace.getTracerProvider();
  return provider instanceof api.ProxyTracerProvider ? provider.getDelegateTracer(SCOPE) : provider.getTracer(SCOPE);
}

/**
 * A span of the package's own per state change, with the change as its event. Its own, because a heartbeat
 * timer runs in no request's context: there is no active span to add an event to. A root, because a
 * transition belongs to no request even when one happened to be active. Zero length, at the change's time.
 */
function spanOf(api: OtelApi, tracer: Tracer, attributes: Attributes, event: StateChangeEvent): void {
  const span = tracer.startSpan(`connection ${event.name} ${event.to}`, { kind: api.SpanKind.INTERNAL, root: true, startTime: event.at, attributes });
  // The reason is already scrubbed of every configured secret (connection-monitor.ts).
  span.addEvent('connection_health.state_change', { connection: event.name, from: event.from, to: event.to, reason: event.reason }, event.at);
  if (event.to === 'down' || event.to === 'failed') span.setStatus({ code: api.SpanStatusCode.ERROR, message: event.reason });
  span.end(event.at);
}
