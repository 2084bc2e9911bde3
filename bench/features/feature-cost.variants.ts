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

export const FEATURE_VARIANTS: Record<string, FeatureVariant> = {
  off: { label: 'none of them (the package as before)' },
  metrics: { label: 'prom-client metrics (`metrics: {}`), for scale', options: { metrics: {} } },
};
