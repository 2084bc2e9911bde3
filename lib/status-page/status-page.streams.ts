import type { ServerResponse } from 'node:http';
import { messages } from '../core/messages.js';

export interface StatusPageStreamLimits {
  /** Open streams at once; one more is answered 503. */
  readonly maxStreams: number;
  /** Bytes a stream may have waiting for a client that does not read; past it the stream is cut. */
  readonly maxPendingBytes: number;
  /** A comment this often, so that proxies do not close an idle stream. */
  readonly keepAliveMs: number;
}

export const DEFAULT_STREAM_LIMITS: StatusPageStreamLimits = { maxStreams: 32, maxPendingBytes: 1 << 20, keepAliveMs: 15_000 };

/** How long an ended stream may take to close before its socket is destroyed: a client that stopped reading never lets it. */
const CLOSE_GRACE_MS = 500;

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store, no-transform',
  // nginx buffers responses unless told not to; a buffered stream is no live page.
  'x-accel-buffering': 'no',
  'x-content-type-options': 'nosniff',
};

/**
 * The status page's Server-Sent Event streams on raw node:http responses, whatever served the request (the
 * app's Express or Fastify, or a server of the package's own). Bounded in streams and in pending bytes per
 * stream; its keep-alive timer runs only while a stream is open. close() ends every stream and resolves when
 * each response has closed: a stream left open holds app.close(), and one ended without waiting leaves its
 * keep-alive socket to Express' keepAliveTimeout (5 s).
 */
export class StatusPageStreams {
  private readonly open = new Set<ServerResponse>();
  private keepAlive?: NodeJS.Timeout;
  private closing = false;

  constructor(private readonly limits: StatusPageStreamLimits = DEFAULT_STREAM_LIMITS) {}

  get size(): number {
    return this.open.size;
  }

  /** Starts a stream on `response` with `first` (the current view) as its first event. */
  accept(response: ServerResponse, first: () => string): void {
    if (this.closing || this.open.size >= this.limits.maxStreams) {
      response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'retry-after': '5' });
      response.end(`${this.closing ? messages.statusPageShuttingDown : messages.statusPageFull(this.open.size)}\n`);
      return;
    }
    // A client's reset surfaces as 'error' on the response; 'close' follows and forgets the stream.
    response.on('error', () => undefined);
    response.writeHead(200, SSE_HEADERS);
    // retry: how long the browser waits before it opens a dropped stream again.
    response.write(`retry: 2000\n\n${first()}`);
    this.open.add(response);
    response.once('close', () => this.forget(response));
    if (this.keepAlive === undefined) {
      this.keepAlive = setInterval(() => this.send(': keep-alive\n\n'), this.limits.keepAliveMs);
      this.keepAlive.unref();
    }
  }

  /** Writes `frame` to every open stream; a stream whose client stopped reading is cut instead. */
  send(frame: string): void {
    for (const response of this.open) {
      if (response.writableEnded) continue;
      if (response.writableLength > this.limits.maxPendingBytes) response.destroy();
      else response.write(frame);
    }
  }

  /**
   * Ends every stream, refuses new ones, and resolves when every response has closed: at once for a client
   * that reads, within CLOSE_GRACE_MS for one that stopped (its socket destroyed, as bytes still queued for it
   * would hold the end for ever).
   */
  async close(): Promise<void> {
    this.closing = true;
    this.stopKeepAlive();
    await Promise.all(
      [...this.open].map(
        (response) =>
          new Promise<void>((resolve) => {
            const grace = setTimeout(() => response.destroy(), CLOSE_GRACE_MS);
            response.once('close', () => {
              clearTimeout(grace);
              resolve();
            });
            response.end();
          }),
      ),
    );
  }

  private forget(response: ServerResponse): void {
    this.open.delete(response);
    if (this.open.size === 0) this.stopKeepAlive();
  }

  private stopKeepAlive(): void {
    clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }
}

/** One SSE event; its data is JSON, which holds no raw line break. */
export function sseEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
