import type { Socket } from 'node:net';
import { messages } from '../core/messages.js';
import { optionNames, type OptionChecker } from '../core/option-checker.js';
import { loadPeer } from './load-peer.js';

/** The code of the process warnings about keepalive options that do not apply. */
export const KEEPALIVE_WARNING = 'CONNECTION_HEALTH_KEEPALIVE';

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
/** Options the kernel refused, by option and error code: each is told once per process, not per reconnect. */
const refusalsNoted = new Set<string>();

/**
 * Applies the options to a connected socket. Node's setKeepAlive sets the idle time (and resets interval and
 * count to 1 s and 10), so net-keepalive's settings come after it. Without net-keepalive, only the idle
 * time applies, and a process warning says so once.
 *
 * It never throws: keepalive tuning is a help, not a condition of the connection. An option the platform
 * refuses (TCP_USER_TIMEOUT does not exist everywhere; Linux caps TCP_KEEPCNT at 127) keeps the kernel's
 * value, and a process warning names it once.
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
      process.emitWarning(messages.keepAliveFallback(), { code: KEEPALIVE_WARNING });
    }
    return 'node';
  }
  if (socket.destroyed) return 'net-keepalive';
  const tune = (option: keyof TcpKeepAliveOptions, value: number | undefined, apply: (value: number) => unknown) => {
    if (value === undefined) return;
    try {
      apply(value);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      const key = `${option} ${(error as { code?: unknown }).code ?? reason}`;
      if (refusalsNoted.has(key)) return;
      refusalsNoted.add(key);
      process.emitWarning(messages.keepAliveRefused(`keepAlive.${option}`, value, reason), { code: KEEPALIVE_WARNING });
    }
  };
  tune('intervalMs', intervalMs, (ms) => tuner.setKeepAliveInterval(socket, ms));
  tune('count', count, (probes) => tuner.setKeepAliveProbes(socket, probes));
  tune('userTimeoutMs', userTimeoutMs, (ms) => tuner.setUserTimeout(socket, ms));
  return 'net-keepalive';
}

export const KEEPALIVE_OPTIONS = optionNames<TcpKeepAliveOptions>({ idleMs: true, intervalMs: true, count: true, userTimeoutMs: true });

/** Checks the kernel keepalive options of a connection whose socket the package owns. */
export function checkKeepAlive(check: OptionChecker, keepAlive: TcpKeepAliveOptions | undefined): void {
  if (keepAlive === undefined) return;
  check.knownKeys('keepAlive', keepAlive, KEEPALIVE_OPTIONS);
  for (const option of ['idleMs', 'intervalMs', 'userTimeoutMs'] as const) {
    // The kernel counts whole seconds for idle and interval, milliseconds for the user timeout.
    if (keepAlive[option] !== undefined) check.duration(`keepAlive.${option}`, keepAlive[option]);
  }
  if (keepAlive.count !== undefined) check.count('keepAlive.count', keepAlive.count);
}
