import { Controller, Get, Header, HttpStatus, Res, type Type } from '@nestjs/common';
import type { HealthControllerOptions, HealthDetailLevel } from '../interfaces/health-controller-options.interface.js';
import { SecretScrubber } from '../core/secret-scrubber.js';
import { ConnectionHealthProbes, isHealthy, type ProbeResult } from './connection-health.probes.js';

/**
 * The built-in probe routes, made per module registration because a route's path is fixed when its class
 * is declared. `/` is Docker's HEALTHCHECK view (readiness); 200 when healthy or degraded, else 503.
 * The options were checked by checkModuleExtras() when forRoot() or forRootAsync() was called.
 */
export function createHealthController(options: HealthControllerOptions): Type<unknown> {
  const { path = 'health', details = 'status' } = options;

  /** Bodies already serialized, per probe result: a result is reused while no snapshot changes. */
  const bodies = new WeakMap<ProbeResult, string>();
  const answer = (result: ProbeResult, response: StatusSetter, scrubber: SecretScrubber): string => {
    // The status is set here rather than thrown as an exception: a probe storm during an outage then costs
    // no more than a healthy one.
    if (!isHealthy(result)) response.status(HttpStatus.SERVICE_UNAVAILABLE);
    let body = bodies.get(result);
    if (body === undefined) {
      // Snapshots are scrubbed when made; scrubbing a full answer again costs once per result and covers a
      // secret the package learned later (a factory's client). The other levels hold fixed words only.
      const shaped = shape(result, details);
      body = JSON.stringify(details === 'full' ? scrubber.scrubDeep(shaped) : shaped);
      bodies.set(result, body);
    }
    return body;
  };

  @Controller(path)
  class ConnectionHealthController {
    constructor(
      private readonly probes: ConnectionHealthProbes,
      private readonly scrubber: SecretScrubber,
    ) {}

    @Get()
    @Header('Cache-Control', 'no-store')
    @Header('Content-Type', 'application/json; charset=utf-8')
    health(@Res({ passthrough: true }) response: StatusSetter): string {
      return answer(this.probes.readiness(), response, this.scrubber);
    }

    @Get('ready')
    @Header('Cache-Control', 'no-store')
    @Header('Content-Type', 'application/json; charset=utf-8')
    ready(@Res({ passthrough: true }) response: StatusSetter): string {
      return answer(this.probes.readiness(), response, this.scrubber);
    }

    @Get('live')
    @Header('Cache-Control', 'no-store')
    @Header('Content-Type', 'application/json; charset=utf-8')
    live(@Res({ passthrough: true }) response: StatusSetter): string {
      return answer(this.probes.liveness(), response, this.scrubber);
    }

    @Get('startup')
    @Header('Cache-Control', 'no-store')
    @Header('Content-Type', 'application/json; charset=utf-8')
    startup(@Res({ passthrough: true }) response: StatusSetter): string {
      return answer(this.probes.startup(), response, this.scrubber);
    }
  }
  return ConnectionHealthController;
}

/** Express' response and Fastify's reply both set the status this way. */
interface StatusSetter {
  status(code: number): unknown;
}

function shape(result: ProbeResult, level: HealthDetailLevel): object {
  if (level === 'full') return result;
  if (level === 'none') return { status: result.status };
  const statusOnly = (entries: ProbeResult['details']) =>
    Object.fromEntries(Object.entries(entries).map(([name, entry]) => [name, { status: entry.status }]));
  return { status: result.status, info: statusOnly(result.info), error: statusOnly(result.error), details: statusOnly(result.details) };
}
