import type { PromRegistryLike } from '../metrics/prom-registry-like.js';

export interface MetricsOptions {
  /**
   * The prom-client Registry to register in. Default: prom-client's global registry, the one an app's
   * /metrics route (e.g. @willsoto/nestjs-prometheus) serves unless told otherwise.
   */
  registry?: PromRegistryLike;
  /** Prefix of every metric name. Default 'connection_health_'. */
  prefix?: string;
}
