import type { Socket } from 'node:net';
import { loadPeer } from './load-peer.js';

/**
 * Kernel-level keepalive of a socket the package owns. It complements heartbeats: it notices a dead peer
 * on an idle connection without any application traffic, and TCP_USER_TIMEOUT bounds how long sent data
 * may stay unacknowledged, which keepalive alone does not.
 */
export interface TcpKeepAliveOptions {
  /** Idle time before the first probe (TCP_KEEPIDLE). Default 30 000. */
  idleMs?: number;
  /** Time between unanswered probes (TCP_KEEPINTVL). Needs net-keepalive; Node alone uses 1 000. */
  intervalMs?: number;
  /** Unanswered probes before the kernel drops the connection (TCP_KEEPCNT). Needs net-keepalive; Node alone uses 10. */
  count?: number;
  /** How long sent data may stay unacknowledged before the kernel drops the connection (TCP_USER_TIMEOUT). Needs net-keepalive. */
  userTimeoutMs?: number;
}

interface NetKeepAlive {
  setKeepAliveInterval(socket: Socket, ms: number): boolean;
  setKeepAliveProbes(socket: Socket, count: number): boolean;
  setUserTimeout(socket: Socket, ms: number): boolean;
}

let fallbackNoted = false;

/**
 * Applies the options to a connected socket. Node's setKeepAlive sets the idle time (and resets interval and
 * count to 1 s and 10), so net-keepalive's settings come after it. Without net-keepalive, only the idle
 * time applies, and a process warning says so once.
 */
export async function applyTcpKeepAlive(socket: Socket, options: TcpKeepAliveOptions): Promise<'net-keepalive' | 'node'> {
  socket.setKeepAlive(true, options.idleMs ?? 30_000);
  const { intervalMs, count, userTimeoutMs } = options;
  if (intervalMs === undefined && count === undefined && userTimeoutMs === undefined) return 'node';
  let tuner: NetKeepAlive;
  try {
    const loaded = await loadPeer<NetKeepAlive & { default?: NetKeepAlive }>('net-keepalive', 'TCP keepalive interval, count and user timeout');
    tuner = loaded.default ?? loaded;
  } catch {
    if (!fallbackNoted) {
      fallbackNoted = true;
      process.emitWarning(
        'net-keepalive is not installed: TCP keepalive keeps its idle time but probes every 1 s, 10 times, and ' +
          'TCP_USER_TIMEOUT stays unset. Run "npm install net-keepalive" to apply intervalMs, count and userTimeoutMs.',
        { code: 'CONNECTION_HEALTH_KEEPALIVE' },
      );
    }
    return 'node';
  }
  if (socket.destroyed) return 'net-keepalive';
  if (intervalMs !== undefined) tuner.setKeepAliveInterval(socket, intervalMs);
  if (count !== undefined) tuner.setKeepAliveProbes(socket, count);
  if (userTimeoutMs !== undefined) tuner.setUserTimeout(socket, userTimeoutMs);
  return 'net-keepalive';
}
