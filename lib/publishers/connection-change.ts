import type { ConnectionState } from '../core/connection-state.js';

/** One transition of a connection, as every publisher receives it. */
export interface ConnectionChange {
  readonly type: 'change';
  /** The connection's name. */
  readonly connection: string;
  /** Its kind: 'typeorm', 'tcp', 'imap', ... */
  readonly kind: string;
  readonly from: ConnectionState;
  readonly to: ConnectionState;
  /** When it changed, in milliseconds since the epoch. */
  readonly at: number;
  /** Whether the connection decides readiness. */
  readonly required: boolean;
  /** Why it changed, with every secret the package knows removed. */
  readonly reason: string;
  /** Reconnect attempts since the connection was last up. */
  readonly reconnectAttempts: number;
}

/**
 * What a throttling publisher (WebhookPublisher) sends in place of the transitions it held back: how many
 * transitions the connection made in the window, and where it stands now.
 */
export interface ConnectionChangeSummary extends Omit<ConnectionChange, 'type'> {
  readonly type: 'summary';
  /** Transitions in the window, those already sent one by one included. */
  readonly changes: number;
  /** The window the count covers. */
  readonly windowMs: number;
}
