import type { MonitorOptionsInput } from '../core/monitor-options.js';
import type { ConnectionDefinition } from './connection-definition.interface.js';

export interface ConnectionHealthModuleOptions {
  /** The connections to monitor, beside those that decorated providers declare. Default none. */
  connections?: ConnectionDefinition[];
  /** heartbeat / reconnect / failure options shared by every connection; each may override them. */
  defaults?: MonitorOptionsInput;
  /** Deadline for closing every connection at shutdown, in parallel; what is left is force-closed. Default 10 000. */
  shutdownTimeoutMs?: number;
}
