import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { BeforeApplicationShutdown, OnApplicationBootstrap } from '@nestjs/common';
import { ConnectionHealthConfigError } from '../core/errors/connection-health-config.error.js';
import { messages } from '../core/messages.js';
import type { ConnectionHealthLogger } from '../logging/connection-health.logger.js';
import type { ProbeAnswers, ProbeName } from './probe-answers.js';

export interface ManagementPortOptions {
  readonly port: number;
  readonly host?: string;
  /** The route prefix, as the built-in controller's: 'health' serves /health, /health/ready, ... */
  readonly path: string;
}

const HEADERS = { 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8' } as const;
const NOT_FOUND = JSON.stringify({ statusCode: 404, message: 'Not Found' });

/**
 * The probe routes on a port of their own (healthController.port): a bare node:http server that answers
 * from the same ProbeAnswers as the built-in controller, so codes and bodies are the same, with no Nest
 * pipeline in between: the app's guards, interceptors, throttler, prefix and versioning never apply.
 *
 * It listens at bootstrap (a port in use stops the bootstrap) and closes before the app's own server
 * does, after the drain: while connections close, readiness still answers 503 here as on the app's routes.
 */
export class ManagementPortServer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private server?: Server;
  private readonly routes: ReadonlyMap<string, ProbeName>;

  constructor(
    private readonly options: ManagementPortOptions,
    private readonly answers: ProbeAnswers,
    private readonly registration: string,
    private readonly logger: ConnectionHealthLogger,
  ) {
    const base = `/${options.path.replace(/^\/+|\/+$/g, '')}`.replace(/^\/$/, '');
    this.routes = new Map<string, ProbeName>([
      [base || '/', 'readiness'],
      [`${base}/ready`, 'readiness'],
      [`${base}/live`, 'liveness'],
      [`${base}/startup`, 'startup'],
    ]);
  }

  async onApplicationBootstrap(): Promise<void> {
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

  private get address(): string {
    return `${this.options.host ?? '*'}:${this.options.port}`;
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const pathname = (request.url ?? '/').split('?')[0]!;
    const probe = request.method === 'GET' || request.method === 'HEAD' ? this.routes.get(pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname) : undefined;
    const { status, body } = probe ? this.answers.answer(probe) : { status: 404, body: NOT_FOUND };
    response.writeHead(status, { ...HEADERS, 'content-length': Buffer.byteLength(body) });
    response.end(request.method === 'HEAD' ? undefined : body);
  }
}
