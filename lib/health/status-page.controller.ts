import { Controller, Get, Header, Res, type Type, VERSION_NEUTRAL } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import type { HealthControllerOptions } from '../interfaces/health-controller-options.interface.js';
import { ConnectionHealthStatusPage } from '../status-page/connection-health.status-page.js';
import { STATUS_PAGE_HEADERS } from '../status-page/status-page.assets.js';

/**
 * The status page's routes, `/<path>/ui` and its stream `/<path>/ui/events`, made per registration beside the
 * probe routes and with the same `decorators`, so that the app's guards protect the page as they do the probes.
 */
export function createStatusPageController(options: HealthControllerOptions): Type<unknown> {
  const { path = 'health', decorators = [] } = options;

  @Controller({ path, version: VERSION_NEUTRAL })
  class ConnectionHealthStatusPageController {
    constructor(private readonly page: ConnectionHealthStatusPage) {}

    @Get('ui')
    ui(): string {
      return this.page.html();
    }

    /** The stream writes to the raw response itself, so Nest must not answer: @Res() without passthrough. */
    @Get('ui/events')
    events(@Res() response: ServerResponse | FastifyReplyLike): void {
      this.page.stream(rawResponse(response));
    }
  }
  // The same headers as on the management port, as if each were written above ui() with @Header().
  const prototype = ConnectionHealthStatusPageController.prototype;
  const headers = Object.entries(STATUS_PAGE_HEADERS).map(([name, value]) => Header(name, value));
  Reflect.decorate(headers, prototype, 'ui', Object.getOwnPropertyDescriptor(prototype, 'ui'));
  return Reflect.decorate(decorators, ConnectionHealthStatusPageController) as Type<unknown>;
}

/** The part of Fastify's reply used here: the raw response, and hijack() so that Fastify leaves it alone. */
interface FastifyReplyLike {
  raw: ServerResponse;
  hijack(): unknown;
}

function rawResponse(response: ServerResponse | FastifyReplyLike): ServerResponse {
  if ('raw' in response && typeof response.hijack === 'function') {
    response.hijack();
    return response.raw;
  }
  return response as ServerResponse;
}
