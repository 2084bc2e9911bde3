/** How much a health answer tells. Whatever the level, no answer holds credentials. */
export type HealthDetailLevel =
  /** Per connection: kind, target, state, since, reason, last beat, RTT, attempts, last error. */
  | 'full'
  /** Per connection: its status only. */
  | 'status'
  /** The overall status only; the HTTP code says the rest. */
  | 'none';

export interface HealthControllerOptions {
  /** Route prefix: `/<path>`, `/<path>/live`, `/<path>/ready`, `/<path>/startup`. Default 'health'. */
  path?: string;
  /**
   * Default 'status': safe on a port that more people reach than the app's data. 'full' adds each
   * connection's kind, target (host, port, database), state, reasons and last error: scrubbed of every
   * secret, but it still tells a caller the app's topology and its dependencies' errors.
   */
  details?: HealthDetailLevel;
}
