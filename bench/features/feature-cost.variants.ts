import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ConnectionHealthModuleOptions, LogPublisher, WebhookPublisher } from '../../lib/index.js';

/**
 * The module options each row of the feature-cost bench adds to the same app, by name. Setup that an app
 * does itself (an SDK started in main.ts, a receiver for webhooks) happens in `prepare`, before the app.
 */
export interface FeatureVariant {
  label: string;
  prepare?: () => Promise<Partial<ConnectionHealthModuleOptions> & { healthController?: object }>;
  options?: Partial<ConnectionHealthModuleOptions> & { healthController?: object };
  /** A browser keeps the status page's stream open through the window. */
  watch?: boolean;
}

/** An SDK as an app starts it: metrics read by a periodic exporter (not within the window), spans processed one by one. */
async function openTelemetrySdk(): Promise<Pick<ConnectionHealthModuleOptions, 'openTelemetry'>> {
  const { MeterProvider, PeriodicExportingMetricReader, InMemoryMetricExporter, AggregationTemporality } = await import('@opentelemetry/sdk-metrics');
  const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 3_600_000 });
  return {
    openTelemetry: {
      meterProvider: new MeterProvider({ readers: [reader] }),
      tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] }),
    },
  };
}

/** A webhook receiver that answers every POST at once, in this process, as a chat service would. */
async function publishers(): Promise<Pick<ConnectionHealthModuleOptions, 'publishers'>> {
  const receiver = http.createServer((request, response) => request.resume().on('end', () => response.writeHead(204).end()));
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiver.unref();
  const { port } = receiver.address() as AddressInfo;
  return { publishers: [new WebhookPublisher({ url: `http://127.0.0.1:${port}/hooks/T000/B000/XXXX`, secret: 'bench-secret-0123456789abcdef' }), new LogPublisher()] };
}

const statusPage = { healthController: { ui: true } };

export const FEATURE_VARIANTS: Record<string, FeatureVariant> = {
  off: { label: 'none of them (the package as before)' },
  metrics: { label: 'prom-client metrics (`metrics: {}`), for scale', options: { metrics: {} } },
  openTelemetry: { label: 'OpenTelemetry (an SDK MeterProvider and TracerProvider)', prepare: openTelemetrySdk },
  publishers: { label: 'publishers (a webhook to a local receiver, and the log)', prepare: publishers },
  statusPage: { label: 'status page (`ui: true`), nobody watching', options: statusPage },
  statusPageWatched: { label: 'status page, one browser watching', options: statusPage, watch: true },
  all: {
    label: 'all of them (metrics, OpenTelemetry, publishers, the page watched)',
    options: { metrics: {}, ...statusPage },
    prepare: async () => ({ ...(await openTelemetrySdk()), ...(await publishers()) }),
    watch: true,
  },
};
