import type { MonitorOptionsInput } from './monitor-options.js';
import { optionNames } from './option-checker.js';

/** What a connection definition holds whatever its kind; each kind's definition adds its `kind` literal and options. */
export interface ConnectionDefinitionBase extends MonitorOptionsInput {
  /** Unique name: the key in health bodies and in the registry. */
  name: string;
  /** A required connection decides readiness; an optional one that is down only makes health `degraded`. Default true. */
  required?: boolean;
}

/** The options every connection takes, beside those of its kind. */
export const CONNECTION_OPTIONS = optionNames<ConnectionDefinitionBase & { kind: string }>({
  name: true,
  kind: true,
  required: true,
  heartbeat: true,
  suspicion: true,
  reconnect: true,
  failure: true,
});
