import type { Registry } from 'prom-client';

export interface MetricsOptions {
  /**
   * The prom-client Registry to register in. Default: prom-client's global registry, the one an app's
   * /metrics route (e.g. @willsoto/nestjs-prometheus) serves unless told otherwise.
   */
  registry?: Registry;
  /** Prefix of every metric name. Default 'connection_health_'. */
  prefix?: string;
}
