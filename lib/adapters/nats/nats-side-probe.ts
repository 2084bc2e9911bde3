import { randomBytes } from 'node:crypto';
import { abortable } from '../../core/abortable.js';
import { loadPeer } from '../load-peer.js';
import type { NatsConnectionLike } from './nats-like.js';

type NatsLibrary = typeof import('nats');

/**
 * Whether the server answers a new connection along the same path (`options`: the server alone, TLS, no
 * credentials; nats.js's reconnect off): connected and a PING answered, or the connection refused by the
 * server itself (an authorization violation). While a connection's own flow stays silent, an answer here says
 * that flow died; no answer says nothing (a stalled server, a path down for everyone). Resolves false when
 * `signal` aborts first; the side connection is closed in any case.
 */
export async function serverAnswersAnew(options: Record<string, unknown>, signal: AbortSignal): Promise<boolean> {
  const { connect } = await loadPeer<NatsLibrary>('nats', 'NATS connections');
  const connecting = connect({
    ...options,
    name: `connection-health-probe-${randomBytes(4).toString('hex')}`,
    reconnect: false,
    waitOnFirstConnect: false,
  }) as unknown as Promise<NatsConnectionLike>;
  // One that connects after the deadline is closed at once.
  void connecting.then(
    (side) => {
      if (signal.aborted) void side.close().catch(() => undefined);
    },
    () => undefined,
  );
  try {
    const side = await abortable(connecting, signal);
    try {
      await abortable(side.rtt(), signal);
      return true;
    } finally {
      void side.close().catch(() => undefined);
    }
  } catch (error) {
    return !signal.aborted && /AUTHORIZATION_VIOLATION|AUTHENTICATION/i.test(String((error as { code?: unknown })?.code ?? ''));
  }
}
