/**
 * An OpenTelemetry MeterProvider, as far as the package uses it; the SDK's MeterProvider (and the API's
 * global, `metrics.getMeterProvider()`) is one. The package's own type rather than @opentelemetry/api's, so
 * that its published declarations compile where @opentelemetry/api is not installed.
 */
export interface MeterProviderLike {
  getMeter(name: string, version?: string, options?: object): unknown;
}

/** An OpenTelemetry TracerProvider, as far as the package uses it; the SDK's tracer providers are ones. */
export interface TracerProviderLike {
  getTracer(name: string, version?: string, options?: object): unknown;
}
