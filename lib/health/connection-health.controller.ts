import { Controller, Get, Header, Res, type Type, VERSION_NEUTRAL } from '@nestjs/common';
import type { HealthControllerOptions } from '../interfaces/health-controller-options.interface.js';
import { SecretScrubber } from '../core/secret-scrubber.js';
import { ConnectionHealthProbes } from './connection-health.probes.js';
import { type ProbeName, ProbeAnswers } from './probe-answers.js';

/**
 * The built-in probe routes, made per module registration because a route's path is fixed when its class
 * is declared. `/` is Docker's HEALTHCHECK view (readiness); 200 when healthy or degraded, else 503.
 * The options were checked by checkModuleExtras() when forRoot() or forRootAsync() was called.
 *
 * Version-neutral: an app with URI versioning still answers at `/health`, where its orchestrator probes,
 * not at `/v1/health`. `decorators` are applied to the class as if written above it, so that an app's
 * global guards and interceptors find their own markers (@SkipThrottle(), a @Public()) on these routes.
 */
export function createHealthController(options: HealthControllerOptions): Type<unknown> {
  const { path = 'health', details = 'status', decorators = [] } = options;

  @Controller({ path, version: VERSION_NEUTRAL })
  class ConnectionHealthController {
    private readonly answers: ProbeAnswers;

    constructor(probes: ConnectionHealthProbes, scrubber: SecretScrubber) {
      this.answers = new ProbeAnswers(probes, scrubber, details);
    }

    @Get()
    @Header('Cache-Control', 'no-store')
    @Header('Content-Type', 'application/json; charset=utf-8')
    health(@Res({ passthrough: true }) response: StatusSetter): string {
      return this.answer('readiness', response);
    }

    @Get('ready')
    @Header('Cache-Control', 'no-store')
    @Header('Content-Type', 'application/json; charset=utf-8')
    ready(@Res({ passthrough: true }) response: StatusSetter): string {
      return this.answer('readiness', response);
    }

    @Get('live')
    @Header('Cache-Control', 'no-store')
    @Header('Content-Type', 'application/json; charset=utf-8')
    live(@Res({ passthrough: true }) response: StatusSetter): string {
      return this.answer('liveness', response);
    }

    @Get('startup')
    @Header('Cache-Control', 'no-store')
    @Header('Content-Type', 'application/json; charset=utf-8')
    startup(@Res({ passthrough: true }) response: StatusSetter): string {
      return this.answer('startup', response);
    }

    private answer(probe: ProbeName, response: StatusSetter): string {
      const { status, body } = this.answers.answer(probe);
      if (status !== 200) response.status(status);
      return body;
    }
  }
  // Reflect.decorate applies them as TypeScript applies decorators written above a class (last first).
  return Reflect.decorate(decorators, ConnectionHealthController) as Type<unknown>;
}

/** Express' response and Fastify's reply both set the status this way. */
interface StatusSetter {
  status(code: number): unknown;
}
