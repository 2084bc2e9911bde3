import type { ConnectionHealthModuleOptions } from '../../lib/index.js';

/**
 * The module options each row of the feature-cost bench adds to the same app, by name. Setup that an app
 * does itself (an SDK started in main.ts, a receiver for webhooks) happens in `prepare`, before the app.
 */
export interface FeatureVariant {
  label: string;
  prepare?: () => Promise<Partial<ConnectionHealthModuleOptions> & { healthController?: object }>;
  options?: Partial<ConnectionHealthModuleOptions> & { healthController?: object };
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

export const FEATURE_VARIANTS: Record<string, FeatureVariant> = {
  off: { label: 'none of them (the package as before)' },
  metrics: { label: 'prom-client metrics (`metrics: {}`), for scale', options: { metrics: {} } },
  openTelemetry: { label: 'OpenTelemetry (an SDK MeterProvider and TracerProvider)', prepare: openTelemetrySdk },
};
