import { connect, type Socket } from 'node:net';
import { BehaviorSubject } from 'rxjs';
import { onAbort } from '../../core/abortable.js';
import type { ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import { applyTcpKeepAlive, type TcpKeepAliveOptions } from '../tcp-keepalive.js';

export interface TcpAdapterOptions {
  host: string;
  port: number;
  /**
   * 'probe' (default): every heartbeat opens a fresh connection and closes it; the round trip is the
   * connect time. 'hold': also keeps one connection open and reports its loss (FIN, RST) at once,
   * for a dependency whose listener must stay reachable.
   */
  mode?: 'probe' | 'hold';
  /** Kernel keepalive of the held socket ('hold' mode). Default: idle 30 000 ms, the kernel's interval and count. */
  keepAlive?: TcpKeepAliveOptions;
}

/**
 * A host:port dependency without a client library: a TCP connect proves the listener is there. It cannot
 * see a server that accepts connections but no longer answers; custom pings or protocol adapters can.
 */
export class TcpAdapter implements ConnectionAdapter {
  readonly kind = 'tcp';
  readonly target: string;
  private held?: Socket;
  private onLoss?: (error: Error) => void;
  /** The held socket is the live client in 'hold' mode. */
  readonly clientChanges$ = new BehaviorSubject<Socket | undefined>(undefined);

  constructor(
    private readonly options: TcpAdapterOptions,
    /** Tunes the held socket's keepalive; tests pass one that fails or waits. */
    private readonly applyKeepAlive: (socket: Socket, options: TcpKeepAliveOptions) => Promise<unknown> = applyTcpKeepAlive,
  ) {
    this.target = `${options.host}:${options.port}`;
  }

  async open(signal: AbortSignal): Promise<void> {
    if (this.options.mode !== 'hold') return this.ping(signal);
    const previous = this.held;
    this.held = undefined;
    previous?.destroy();
    const socket = await this.connect(signal);
    socket.on('error', () => undefined); // 'close' follows and reports; an unheard 'error' would crash
    socket.on('data', () => undefined); // a banner must not fill the buffer
    socket.once('close', (hadError) => {
      if (this.held !== socket) return;
      this.held = undefined;
      this.clientChanges$.next(undefined);
      this.onLoss?.(this.lossOf(hadError));
    });
    try {
      await this.applyKeepAlive(socket, this.options.keepAlive ?? {});
      signal.throwIfAborted();
      // The peer may have ended or reset it meanwhile, when no one listened for its loss yet.
      if (socket.readyState !== 'open') throw this.lossOf(socket.errored !== null);
    } catch (error) {
      socket.destroy();
      throw error;
    }
    this.held = socket;
    this.clientChanges$.next(socket);
  }

  currentClient(): Socket | undefined {
    return this.held;
  }

  async ping(signal: AbortSignal): Promise<void> {
    if (this.options.mode === 'hold' && !this.held) throw new Error(`no open connection to ${this.target}`);
    const socket = await this.connect(signal);
    socket.destroy();
  }

  async close(signal: AbortSignal): Promise<void> {
    const socket = this.held;
    this.held = undefined;
    this.clientChanges$.next(undefined);
    this.clientChanges$.complete();
    if (!socket || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => {
        stopForcing();
        resolve();
      });
      socket.end();
      const stopForcing = onAbort(signal, () => socket.destroy());
    });
  }

  observeLoss(onLoss: (error: Error) => void): () => void {
    this.onLoss = onLoss;
    return () => (this.onLoss = undefined);
  }

  private lossOf(reset: boolean): Error {
    return new Error(reset ? `${this.target} reset the connection` : `${this.target} closed the connection`);
  }

  private connect(signal: AbortSignal): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host: this.options.host, port: this.options.port });
      const onAbort = () => {
        socket.destroy();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => {
        signal.removeEventListener('abort', onAbort);
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', (error) => {
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        reject(error);
      });
    });
  }
}
