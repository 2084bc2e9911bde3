import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { BeforeApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { HttpAdapterHost } from '@nestjs/core';
import { ConnectionHealthConfigError } from '../core/errors/connection-health-config.error.js';
import { messages } from '../core/messages.js';
import type { ConnectionHealthLogger } from '../logging/connection-health.logger.js';
import type { ProbeResult } from './connection-health.probes.js';
import type { ProbeAnswers, ProbeName } from './probe-answers.js';
import type { ConnectionHealthStatusPage } from '../status-page/connection-health.status-page.js';
import { STATUS_PAGE_HEADERS } from '../status-page/status-page.assets.js';

export interface ManagementPortOptions {
  readonly port: number;
  readonly host?: string;
  /** The route prefix, as the built-in controller's: 'health' serves /health, /health/ready, ... */
  readonly path: string;
  /** Hold readiness until the app's own HTTP server listens, when the app has one. */
  readonly awaitAppListen: boolean;
}

const HEADERS = { 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8' } as const;
const NOT_FOUND = JSON.stringify({ statusCode: 404, message: 'Not Found' });
/** Readiness before the app's own server listens, whatever the connections say; the reason names the way out. */
const APP_NOT_LISTENING: ProbeResult = (() => {
  const app = { status: 'down', reason: messages.appNotListening() } as const;
  return { status: 'error', info: {}, error: { app }, details: { app } };
})();

/**
 * The probe routes on a port of their own (healthController.port): a bare node:http server that answers
 * from the same ProbeAnswers as the built-in controller, so codes and bodies are the same, with no Nest
 * pipeline in between: the app's guards, interceptors, throttler, prefix and versioning never apply.
 *
 * It listens at module init, before any connection starts, so a port in use stops the bootstrap with
 * nothing left running; and closes before the app's own server does, after the drain: while connections
 * close, readiness still answers 503 here as on the app's routes.
 *
 * Readiness answers 503 until the app's own HTTP server listens, if it has one (awaitAppListen, default
 * true): bound at module init, this port would otherwise let a load balancer send traffic to the app's port
 * while the app's start-up hooks still run and it refuses connections. Nest's server is the only one the
 * package can see, so an app that serves through servers of its own, or never listens (a hybrid app serving
 * through its microservices), turns the hold off; the 503 says so (its reason, with details 'full'). An app
 * with no HTTP adapter (an application context, a microservice) is never held: nothing of it will listen.
 * Startup and liveness are never held: startup is "booted and monitors run", as on the app's routes, and a
 * startup probe that waited for a listen that never comes would get the pod restarted in a loop.
 */
export class ManagementPortServer implements OnModuleInit, BeforeApplicationShutdown {
  private server?: Server;
  private readonly routes: ReadonlyMap<string, ProbeName>;
  private readonly base: string;

  constructor(
    private readonly options: ManagementPortOptions,
    private readonly answers: ProbeAnswers,
    private readonly registration: string,
    private readonly logger: ConnectionHealthLogger,
    /** Told of the port bound (another than `options.port` when that is 0). */
    private readonly bound: (port: number) => void,
    /** The app's own HTTP server, when it has one (not in an application context). */
    private readonly http?: HttpAdapterHost,
    /** The status page (healthController.ui), served at `<path>/ui` and `<path>/ui/events`. */
    private readonly page?: ConnectionHealthStatusPage,
  ) {
    const base = `/${options.path.replace(/^\/+|\/+$/g, '')}`.replace(/^\/$/, '');
    this.base = base;
    this.routes = new Map<string, ProbeName>([
      [base || '/', 'readiness'],
      [`${base}/ready`, 'readiness'],
      [`${base}/live`, 'liveness'],
      [`${base}/startup`, 'startup'],
    ]);
  }

  async onModuleInit(): Promise<void> {
    const { port, host } = this.options;
    const server = createServer((request, response) => this.handle(request, response));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'EADDRINUSE' ? 'the port is in use (EADDRINUSE)' : `${(error as Error).message}`;
      throw new ConnectionHealthConfigError(messages.managementPortUnavailable(this.registration, this.address, why), '*', 'healthController.port', port);
    }
    // Past listening, an error (EMFILE on accept, say) must not crash the app: the app's own server goes on.
    server.on('error', (error) => this.logger.error(messages.managementPortFailed(this.address, error.message)));
    this.server = server;
    this.bound(this.port!);
  }

  /** The port it listens on (the one taken when configured 0), or undefined when it does not listen. */
  get port(): number | undefined {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : undefined;
  }

  async beforeApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // A prober's keep-alive connection would otherwise hold the port, and the process, for keepAliveTimeout.
    server.closeAllConnections();
    await closed;
  }

  /** True when readiness waits for the app's own HTTP server: the app has one, it does not listen, and the option says wait. */
  private heldForApp(): boolean {
    if (!this.options.awaitAppListen) return false;
    const server = this.http?.httpAdapter?.getHttpServer?.() as { listening?: boolean } | undefined;
    return server?.listening === false;
  }

  private get address(): string {
    return `${this.options.host ?? '*'}:${this.port ?? this.options.port}`;
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const pathname = (request.url ?? '/').split('?')[0]!;
    if (this.page && request.method === 'GET' && pathname.replace(/\/+$/, '') === `${this.base}/ui`) {
      const html = this.page.html();
      response.writeHead(200, { ...STATUS_PAGE_HEADERS, 'content-length': Buffer.byteLength(html) });
      response.end(html);
      return;
    }
    if (this.page && request.method === 'GET' && pathname === `${this.base}/ui/events`) return this.page.stream(response);
    const probe = request.method === 'GET' || request.method === 'HEAD' ? this.routes.get(pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname) : undefined;
    const { status, body } = !probe
      ? { status: 404, body: NOT_FOUND }
      : probe === 'readiness' && this.heldForApp()
        ? this.answers.render(APP_NOT_LISTENING)
        : this.answers.answer(probe);
    response.writeHead(status, { ...HEADERS, 'content-length': Buffer.byteLength(body) });
    response.end(request.method === 'HEAD' ? undefined : body);
  }
}
