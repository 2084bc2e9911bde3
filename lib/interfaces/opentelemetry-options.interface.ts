import type { MeterProviderLike, TracerProviderLike } from '../opentelemetry/otel-provider-like.js';

export interface OpenTelemetryOptions {
  /**
   * Where the metrics go. Default: the global MeterProvider (`metrics.getMeterProvider()`), read at
   * application bootstrap, so an SDK started in main.ts before `NestFactory.create()` is found.
   */
  meterProvider?: MeterProviderLike;
  /**
   * Where the span of each state change goes. Default: the global TracerProvider, read at application
   * bootstrap; with none registered (the API's no-op) no span is made.
   */
  tracerProvider?: TracerProviderLike;
  /**
   * Prefix of every instrument name. Default 'connection_health_', so that the OpenTelemetry Prometheus
   * exporter shows the same names as the `metrics` option.
   */
  prefix?: string;
}
