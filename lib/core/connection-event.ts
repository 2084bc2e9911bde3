import type { ConnectionSnapshot } from './connection-snapshot.js';
import type { ConnectionState } from './connection-state.js';

/** A state transition: the only way a connection's state changes. */
export interface StateChangeEvent {
  readonly type: 'state';
  readonly name: string;
  readonly from: ConnectionState;
  readonly to: ConnectionState;
  readonly reason: string;
  readonly at: number;
  readonly snapshot: ConnectionSnapshot;
}

/** The outcome of one heartbeat. */
export interface HeartbeatEvent {
  readonly type: 'heartbeat';
  readonly name: string;
  readonly ok: boolean;
  readonly rttMs?: number;
  readonly error?: string;
  readonly at: number;
  readonly snapshot: ConnectionSnapshot;
}

export type ConnectionEvent = StateChangeEvent | HeartbeatEvent;
