import { Inject, Injectable } from '@nestjs/common';
import type { Clock } from '../core/clock.js';
import { readHealth, type HealthStatus } from '../core/connection-snapshot.js';
import { CONNECTION_HEALTH_CLOCK } from '../connection-health.constants.js';
import { ConnectionHealthOrchestrator } from '../orchestrator/connection-health.orchestrator.js';
import { ConnectionHealthRegistry } from '../registry/connection-health.registry.js';
import { reportConnection } from './connection-report.js';

type Entry = { status: HealthStatus } & Record<string, unknown>;

/** A probe's answer, in the shape of a Terminus health check result. */
export interface ProbeResult {
  readonly status: 'ok' | 'degraded' | 'error' | 'shutting_down';
  readonly info: Record<string, Entry>;
  readonly error: Record<string, Entry>;
  readonly details: Record<string, Entry>;
}

export function isHealthy(result: ProbeResult): boolean {
  return result.status === 'ok' || result.status === 'degraded';
}

/**
 * The three questions an orchestrator asks, answered from snapshots alone (no network I/O, so a probe storm
 * never becomes a database storm):
 * - readiness: every required connection up or degraded, and the app not draining;
 * - liveness: every monitor still running (no stale snapshot). A dependency outage alone never fails it:
 *   restarting the app would not bring a database back, and would restart every replica at once;
 * - startup: the app has booted and its monitors run. Kubernetes kills a container whose startup probe
 *   keeps failing, so a dependency that is down at deploy time must not fail it (new pods would be killed
 *   over and over during a database outage): that belongs to readiness, which holds traffic back until the
 *   connection is up and lets it in by itself when the server returns.
 */
@Injectable()
export class ConnectionHealthProbes {
  constructor(
    private readonly registry: ConnectionHealthRegistry,
    private readonly orchestrator: ConnectionHealthOrchestrator,
    @Inject(CONNECTION_HEALTH_CLOCK) private readonly clock: Clock,
  ) {}

  private readonly memo = new Map<string, { key: readonly unknown[]; result: ProbeResult }>();

  readiness(): ProbeResult {
    const now = this.clock.now();
    const draining = this.orchestrator.draining;
    return this.memoized('readiness', now, [draining], () => {
      const entries = this.registry.all().map((handle): [string, Entry] => {
        const report = reportConnection(handle, now);
        return [handle.name, { status: report.status, ...report.details }];
      });
      if (draining) entries.push(['shutdown', { status: 'down', reason: 'the app is shutting down' }]);
      return summarize(entries, draining);
    });
  }

  liveness(): ProbeResult {
    const now = this.clock.now();
    return this.memoized('liveness', now, [], () =>
      summarize(
        this.registry.all().map((handle): [string, Entry] => {
          const report = reportConnection(handle, now);
          const { state, reason } = report.details;
          return [handle.name, { status: report.stale ? 'down' : 'up', state, ...(report.stale ? { reason } : {}) }];
        }),
      ),
    );
  }

  startup(): ProbeResult {
    return this.memoized('startup', this.clock.now(), [], () =>
      summarize(
        this.registry.all().map((handle): [string, Entry] => {
          const { state } = handle.snapshot();
          if (state === 'idle') return [handle.name, { status: 'down', state, reason: 'the monitor has not started' }];
          return [handle.name, { status: 'up', state }];
        }),
      ),
    );
  }

  /**
   * Snapshots are immutable and change once per beat or transition, while probes may come thousands of
   * times a second: a result is reused as long as every snapshot and `extra` are the same objects. A stale
   * snapshot's reason counts the silence, so while any is stale every answer is computed afresh.
   */
  private memoized(probe: string, now: number, extra: readonly unknown[], compute: () => ProbeResult): ProbeResult {
    const snapshots = this.registry.all().map((handle) => handle.snapshot());
    if (snapshots.some((snapshot) => readHealth(snapshot, now).stale)) return compute();
    const key = [...extra, ...snapshots];
    const known = this.memo.get(probe);
    if (known && known.key.length === key.length && known.key.every((part, i) => part === key[i])) return known.result;
    const result = compute();
    this.memo.set(probe, { key, result });
    return result;
  }
}

function summarize(entries: Array<[string, Entry]>, draining = false): ProbeResult {
  const details = Object.fromEntries(entries);
  const error = Object.fromEntries(entries.filter(([, entry]) => entry.status === 'down'));
  const info = Object.fromEntries(entries.filter(([, entry]) => entry.status !== 'down'));
  const degraded = entries.some(([, entry]) => entry.status === 'degraded');
  const status = draining ? 'shutting_down' : Object.keys(error).length ? 'error' : degraded ? 'degraded' : 'ok';
  return { status, info, error, details };
}
