import { Controller, Get, Header, ServiceUnavailableException, type Type } from '@nestjs/common';
import { OptionChecker } from '../core/option-checker.js';
import type { HealthControllerOptions, HealthDetailLevel } from '../interfaces/health-controller-options.interface.js';
import { ConnectionHealthProbes, isHealthy, type ProbeResult } from './connection-health.probes.js';

const DETAIL_LEVELS: readonly HealthDetailLevel[] = ['full', 'status', 'none'];

/**
 * The built-in probe routes, made per module registration because a route's path is fixed when its class
 * is declared. `/` is Docker's HEALTHCHECK view (readiness); 200 when healthy or degraded, else 503.
 */
export function createHealthController(options: HealthControllerOptions): Type<unknown> {
  const { path = 'health', details = 'full' } = options;
  const check = new OptionChecker('healthController');
  check.that(typeof path === 'string', 'path', path, "Use a route path such as 'health' or 'internal/health'.");
  check.oneOf('details', details, DETAIL_LEVELS);

  @Controller(path)
  class ConnectionHealthController {
    constructor(private readonly probes: ConnectionHealthProbes) {}

    @Get()
    @Header('Cache-Control', 'no-store')
    health() {
      return answer(this.probes.readiness(), details);
    }

    @Get('ready')
    @Header('Cache-Control', 'no-store')
    ready() {
      return answer(this.probes.readiness(), details);
    }

    @Get('live')
    @Header('Cache-Control', 'no-store')
    live() {
      return answer(this.probes.liveness(), details);
    }

    @Get('startup')
    @Header('Cache-Control', 'no-store')
    startup() {
      return answer(this.probes.startup(), details);
    }
  }
  return ConnectionHealthController;
}

function answer(result: ProbeResult, level: HealthDetailLevel): object {
  const body = shape(result, level);
  if (!isHealthy(result)) throw new ServiceUnavailableException(body);
  return body;
}

function shape(result: ProbeResult, level: HealthDetailLevel): object {
  if (level === 'full') return result;
  if (level === 'none') return { status: result.status };
  const statusOnly = (entries: ProbeResult['details']) =>
    Object.fromEntries(Object.entries(entries).map(([name, entry]) => [name, { status: entry.status }]));
  return { status: result.status, info: statusOnly(result.info), error: statusOnly(result.error), details: statusOnly(result.details) };
}
