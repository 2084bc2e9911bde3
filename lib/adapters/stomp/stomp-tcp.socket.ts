import net from 'node:net';
import tls from 'node:tls';
import { applyTcpKeepAlive, type TcpKeepAliveOptions } from '../tcp-keepalive.js';

export interface StompTcpSocketOptions {
  host: string;
  port: number;
  /** TLS options when the broker speaks STOMP over TLS; absent for plain TCP. */
  tls?: tls.ConnectionOptions;
  /** Kernel keepalive, applied once connected. */
  keepAlive: TcpKeepAliveOptions;
}

/** The readyState values of a WebSocket, which @stomp/stompjs compares against. */
const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** What stompjs reads from a close event: a graceful end is 1000, a lost connection 1006 (as in browsers). */
export interface StompSocketCloseEvent {
  code: number;
  reason: string;
  wasClean: boolean;
}

/**
 * STOMP over a raw TCP or TLS connection, presented as the small WebSocket-like object @stomp/stompjs
 * drives (Node has no WebSocket for it, and brokers listen for plain STOMP on 61613). @stomp/tcp-wrapper
 * does the same but offers neither TLS nor keepalive.
 *
 * terminate() exists because stompjs discards a socket that went silent with it: destroying at once
 * matters here, since end() on a silent peer would wait for a FIN that never comes.
 */
export class StompTcpSocket {
  readonly url: string;
  onopen: ((event?: unknown) => unknown) | null | undefined = null;
  onmessage: ((event: { data: ArrayBuffer }) => unknown) | null | undefined = null;
  onerror: ((event: unknown) => unknown) | null | undefined = null;
  onclose: ((event: StompSocketCloseEvent) => unknown) | null | undefined = null;
  binaryType = 'arraybuffer';
  private state = CONNECTING;
  private readonly socket: net.Socket;
  private lastError?: Error;

  constructor(options: StompTcpSocketOptions) {
    const { host, port } = options;
    this.url = `${options.tls ? 'stomp+ssl' : 'stomp'}://${host}:${port}`;
    // SNI takes host names only; Node warns when it is given an IP address.
    const servername = options.tls?.servername ?? (net.isIP(host) ? undefined : host);
    this.socket = options.tls ? tls.connect({ ...options.tls, host, port, servername }) : net.connect({ host, port });
    this.socket.setNoDelay(true);
    this.socket.once(options.tls ? 'secureConnect' : 'connect', () => {
      if (this.state !== CONNECTING) return;
      // net-keepalive needs the connected file descriptor; a failure leaves Node's own keepalive on.
      void applyTcpKeepAlive(this.socket, options.keepAlive).catch(() => undefined);
      this.state = OPEN;
      this.onopen?.({});
    });
    this.socket.on('data', (chunk: Buffer) => {
      if (this.state !== OPEN) return;
      // stompjs' parser reads string or ArrayBuffer; a Buffer may share a larger pooled ArrayBuffer.
      this.onmessage?.({ data: chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength) as ArrayBuffer });
    });
    // 'close' always follows and reports; an 'error' without a listener would crash the process.
    this.socket.on('error', (error) => {
      this.lastError = error;
      this.onerror?.(error);
    });
    this.socket.once('close', () => this.closed());
  }

  get readyState(): number {
    return this.state;
  }

  /** Why the connection failed (ECONNRESET, ECONNREFUSED, a TLS error), if it did. */
  get error(): Error | undefined {
    return this.lastError;
  }

  send(data: string | ArrayBufferLike | ArrayBufferView): void {
    if (this.state !== OPEN) return;
    if (typeof data === 'string') this.socket.write(data, 'utf8');
    else if (ArrayBuffer.isView(data)) this.socket.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    else this.socket.write(Buffer.from(data));
  }

  /** Graceful close: FIN, then 'close' once the broker has closed its side too. */
  close(): void {
    if (this.state >= CLOSING) return;
    if (this.state === CONNECTING) return this.terminate();
    this.state = CLOSING;
    this.socket.end();
  }

  /** Drops the connection at once and reports the close now, without waiting for the peer. */
  terminate(): void {
    if (this.state === CLOSED) return;
    this.socket.destroy();
    this.closed({ code: 4001, reason: 'discarded', wasClean: false });
  }

  private closed(event?: StompSocketCloseEvent): void {
    if (this.state === CLOSED) return;
    const graceful = this.state === CLOSING && !this.lastError;
    this.state = CLOSED;
    this.onclose?.(
      event ??
        (graceful
          ? { code: 1000, reason: 'closed', wasClean: true }
          : { code: 1006, reason: this.lastError?.message ?? 'connection closed by the broker', wasClean: false }),
    );
  }
}
