import { readHealth, type HealthStatus } from '../core/connection-snapshot.js';
import type { ConnectionHandle } from '../registry/connection-handle.js';

export interface ConnectionReport {
  /** As a health check should count it: an optional connection that is down reads degraded. */
  readonly status: HealthStatus;
  /** Its snapshot has no sign of life for longer than its staleness bound: the monitor stalled. */
  readonly stale: boolean;
  readonly details: Record<string, unknown>;
}

/** What a probe says of one connection, from its snapshot alone: no I/O, no credentials. */
export function reportConnection(handle: ConnectionHandle, now: number): ConnectionReport {
  const s = handle.snapshot();
  const reading = readHealth(s, now);
  const status = reading.status === 'down' && !handle.required ? 'degraded' : reading.status;
  const silenceMs = Math.round(now - Math.max(s.lastBeatAt ?? 0, s.since));
  return {
    status,
    stale: reading.stale,
    details: {
      kind: s.kind,
      ...(s.target === undefined ? {} : { target: s.target }),
      state: s.state,
      since: new Date(s.since).toISOString(),
      reason: reading.stale ? `no sign of life for ${silenceMs} ms: the monitor is stalled` : s.reason,
      ...(s.lastBeatAt === undefined ? {} : { lastBeatAt: new Date(s.lastBeatAt).toISOString() }),
      ...(s.lastRttMs === undefined ? {} : { rttMs: s.lastRttMs }),
      ...(s.figures === undefined ? {} : { figures: s.figures }),
      reconnectAttempts: s.reconnectAttempts,
      ...(s.lastError === undefined ? {} : { lastError: s.lastError }),
      required: handle.required,
    },
  };
}
