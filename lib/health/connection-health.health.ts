import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import type { Clock } from '../core/clock.js';
import { SecretScrubber } from '../core/secret-scrubber.js';
import { CONNECTION_HEALTH_CLOCK } from '../connection-health.constants.js';
import { ConnectionHealthRegistry } from '../registry/connection-health.registry.js';
import type { HealthDetailLevel } from '../interfaces/health-controller-options.interface.js';
import { reportConnection } from './connection-report.js';

export interface IndicatorOptions {
  /**
   * Default 'status': each entry holds its status alone, as Terminus' own indicators do. 'full' adds the
   * connection's kind, target, state, reasons and last error (scrubbed of secrets, but telling the
   * app's topology to whoever reads the health route).
   */
  details?: Exclude<HealthDetailLevel, 'none'>;
}

/** A session of any Terminus in the peer range: `degraded()` came with Terminus 12. */
type IndicatorSession = ReturnType<HealthIndicatorService['check']> & {
  degraded?: (data: Record<string, unknown>) => HealthIndicatorResult;
};

/**
 * Terminus indicator for monitored connections, for apps that compose their own health controller. It reads
 * snapshots only, so a probe never causes network I/O and answers in microseconds while a dependency hangs.
 * It never throws: Terminus would answer 500. An optional connection that is down reads `degraded` (200);
 * a required one reads `down` (503).
 *
 * Terminus 11 has no `degraded` status, and its executor drops an entry of a status it does not know (the
 * connection would vanish from the body). There a degraded connection reads `up` with `degraded: true` in
 * its details, so the answer stays 200 and still says what is wrong.
 */
@Injectable()
export class ConnectionHealthIndicator {
  constructor(
    private readonly registry: ConnectionHealthRegistry,
    private readonly indicators: HealthIndicatorService,
    @Inject(CONNECTION_HEALTH_CLOCK) private readonly clock: Clock,
    private readonly scrubber: SecretScrubber,
  ) {}

  /** One entry per connection: all of them, or the named ones. */
  isHealthy(names?: readonly string[], options: IndicatorOptions = {}): HealthIndicatorResult {
    const wanted = names ?? this.registry.names();
    return Object.assign({}, ...wanted.map((name) => this.report(name, options.details ?? 'status')));
  }

  private report(name: string, level: IndicatorOptions['details']): HealthIndicatorResult {
    const session: IndicatorSession = this.indicators.check(name);
    if (!this.registry.has(name)) return session.down(level === 'full' ? { state: 'unknown', reason: 'no connection of that name is monitored' } : {});
    const report = reportConnection(this.registry.get(name), this.clock.now());
    const { status } = report;
    const details = level === 'full' ? this.scrubber.scrubDeep(report.details) : {};
    if (status === 'up') return session.up(details);
    if (status === 'down') return session.down(details);
    return session.degraded ? session.degraded(details) : session.up({ ...details, degraded: true });
  }
}
