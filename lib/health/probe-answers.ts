import { HttpStatus } from '@nestjs/common';
import type { HealthDetailLevel } from '../interfaces/health-controller-options.interface.js';
import type { SecretScrubber } from '../core/secret-scrubber.js';
import { type ConnectionHealthProbes, isHealthy, type ProbeResult } from './connection-health.probes.js';

/** A probe's HTTP answer: 200 when healthy or degraded, else 503, and the body already serialized. */
export interface ProbeAnswer {
  readonly status: number;
  readonly body: string;
}

/** The probes behind the built-in routes: `/<path>` and `/<path>/ready` (readiness), `/<path>/live`, `/<path>/startup`. */
export type ProbeName = 'readiness' | 'liveness' | 'startup';

/**
 * Turns probe results into HTTP answers, for the built-in controller and the management port alike, so
 * that both give the same codes and bodies. The status is returned rather than thrown as an exception: a
 * probe storm during an outage then costs no more than a healthy one.
 */
export class ProbeAnswers {
  /** Bodies already serialized, per probe result: a result is reused while no snapshot changes. */
  private readonly bodies = new WeakMap<ProbeResult, string>();

  constructor(
    private readonly probes: ConnectionHealthProbes,
    private readonly scrubber: SecretScrubber,
    private readonly details: HealthDetailLevel,
  ) {}

  answer(probe: ProbeName): ProbeAnswer {
    return this.render(this.probes[probe]());
  }

  /** The answer to a result, at this level of details. */
  render(result: ProbeResult): ProbeAnswer {
    const status = isHealthy(result) ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE;
    let body = this.bodies.get(result);
    if (body === undefined) {
      // Snapshots are scrubbed when made; scrubbing a full answer again costs once per result and covers a
      // secret the package learned later (a factory's client). The other levels hold fixed words only.
      const shaped = shape(result, this.details);
      body = JSON.stringify(this.details === 'full' ? this.scrubber.scrubDeep(shaped) : shaped);
      this.bodies.set(result, body);
    }
    return { status, body };
  }
}

function shape(result: ProbeResult, level: HealthDetailLevel): object {
  if (level === 'full') return result;
  if (level === 'none') return { status: result.status };
  const statusOnly = (entries: ProbeResult['details']) =>
    Object.fromEntries(Object.entries(entries).map(([name, entry]) => [name, { status: entry.status }]));
  return { status: result.status, info: statusOnly(result.info), error: statusOnly(result.error), details: statusOnly(result.details) };
}
