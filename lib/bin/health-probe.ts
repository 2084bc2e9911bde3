#!/usr/bin/env node
/**
 * connection-health-probe [url] [--timeout=ms]
 *
 * A HEALTHCHECK command for images without curl or wget: GETs the health URL (default
 * http://127.0.0.1:$PORT/health, PORT defaulting to 3000), prints one line and exits 0 for a 2xx answer,
 * 1 for anything else, including no answer within the timeout (default 3000 ms). It needs nothing but Node.
 */
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';

const args = process.argv.slice(2);
const timeoutArg = args.find((arg) => arg.startsWith('--timeout='));
const timeoutMs = timeoutArg ? Number(timeoutArg.slice('--timeout='.length)) : 3_000;
const url = args.find((arg) => !arg.startsWith('--')) ?? `http://127.0.0.1:${process.env.PORT ?? 3000}/health`;

function finish(healthy: boolean, line: string): void {
  process.stdout.write(`${line}\n`);
  process.exitCode = healthy ? 0 : 1;
}

/** "db: down, mail: degraded" from a Terminus-shaped body, when it has details. */
function summary(body: string): string {
  try {
    const parsed = JSON.parse(body) as { status?: string; details?: Record<string, { status?: string }> };
    const notUp = Object.entries(parsed.details ?? {}).filter(([, entry]) => entry.status !== 'up');
    const parts = notUp.map(([name, entry]) => `${name}: ${entry.status}`);
    return [parsed.status, parts.length ? `(${parts.join(', ')})` : ''].filter(Boolean).join(' ');
  } catch {
    return body.slice(0, 80);
  }
}

if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
  finish(false, `usage: connection-health-probe [url] [--timeout=ms]; bad timeout ${JSON.stringify(timeoutArg)}`);
} else {
  const startedAt = performance.now();
  const get = url.startsWith('https:') ? httpsGet : httpGet;
  const request = get(url, { timeout: timeoutMs, headers: { connection: 'close' } }, (response) => {
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => (body += chunk));
    response.on('end', () => {
      const status = response.statusCode ?? 0;
      const healthy = status >= 200 && status < 300;
      const ms = Math.round(performance.now() - startedAt);
      finish(healthy, `${healthy ? 'healthy' : 'unhealthy'}: ${status} ${summary(body)} in ${ms} ms`.replace(/\s+/g, ' '));
    });
  });
  // The socket timeout only measures idleness: an overall deadline keeps a trickling server from holding on.
  const deadline = setTimeout(() => request.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
  request.on('error', (error) => finish(false, `unreachable: ${error.message}`));
  request.on('close', () => clearTimeout(deadline));
}
