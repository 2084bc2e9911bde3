/**
 * A prom-client Registry, as far as the package and prom-client's metric constructors use it; any Registry
 * of prom-client 15 is one. The package's own type rather than prom-client's, so that its published
 * declarations compile where prom-client is not installed.
 */
export interface PromRegistryLike {
  registerMetric(metric: object): void;
  getSingleMetric(name: string): unknown;
  /** The exposition text that a /metrics route serves. */
  metrics(): Promise<string>;
}
