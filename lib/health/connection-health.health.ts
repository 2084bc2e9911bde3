import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import type { Clock } from '../core/clock.js';
import { readHealth } from '../core/connection-snapshot.js';
import { CONNECTION_HEALTH_CLOCK } from '../connection-health.constants.js';
import type { ConnectionHandle } from '../registry/connection-handle.js';
import { ConnectionHealthRegistry } from '../registry/connection-health.registry.js';

/**
 * Terminus indicator for monitored connections. It reads snapshots only, so a probe never causes network
 * I/O and answers in microseconds while a dependency hangs. It never throws: Terminus would answer 500.
 * An optional connection that is down reads `degraded` (200); a required one reads `down` (503).
 */
@Injectable()
export class ConnectionHealthIndicator {
  constructor(
    private readonly registry: ConnectionHealthRegistry,
    private readonly indicators: HealthIndicatorService,
    @Inject(CONNECTION_HEALTH_CLOCK) private readonly clock: Clock,
  ) {}

  /** One entry per connection: all of them, or the named ones. */
  isHealthy(names?: readonly string[]): HealthIndicatorResult {
    const wanted = names ?? this.registry.names();
    return Object.assign({}, ...wanted.map((name) => this.report(name)));
  }

  private report(name: string): HealthIndicatorResult {
    const session = this.indicators.check(name);
    if (!this.registry.has(name)) return session.down({ state: 'unknown', reason: 'no connection of that name is monitored' });
    const handle = this.registry.get(name);
    const now = this.clock.now();
    const reading = readHealth(handle.snapshot(), now);
    const details = this.details(handle, reading.stale, now);
    if (reading.status === 'up') return session.up(details);
    if (reading.status === 'degraded' || !handle.required) return session.degraded(details);
    return session.down(details);
  }

  private details(handle: ConnectionHandle, stale: boolean, now: number): Record<string, unknown> {
    const s = handle.snapshot();
    return {
      kind: s.kind,
      ...(s.target === undefined ? {} : { target: s.target }),
      state: s.state,
      since: new Date(s.since).toISOString(),
      reason: stale ? `no sign of life for ${Math.round(now - Math.max(s.lastBeatAt ?? 0, s.since))} ms: the monitor is stalled` : s.reason,
      ...(s.lastBeatAt === undefined ? {} : { lastBeatAt: new Date(s.lastBeatAt).toISOString() }),
      ...(s.lastRttMs === undefined ? {} : { rttMs: s.lastRttMs }),
      reconnectAttempts: s.reconnectAttempts,
      ...(s.lastError === undefined ? {} : { lastError: s.lastError }),
      required: handle.required,
    };
  }
}
