import { randomBytes } from 'node:crypto';
import { abortable } from '../../core/abortable.js';
import { loadPeer } from '../load-peer.js';
import { NatsDials } from './nats-dials.js';
import type { NatsConnectionLike } from './nats-like.js';

type NatsLibrary = typeof import('nats');

/**
 * Whether the server answers a new connection along the same path (`options`: the server alone, TLS, no
 * credentials; nats.js's reconnect off): connected and a PING answered, or the connection refused by the
 * server itself (an authorization violation). While a connection's own flow stays silent, an answer here says
 * that flow died; no answer says nothing (a stalled server, a path down for everyone). Resolves false when
 * `signal` aborts first; the side connection is closed in any case, its sockets destroyed.
 */
export async function serverAnswersAnew(options: Record<string, unknown>, signal: AbortSignal): Promise<boolean> {
  // A TLS-first dial cannot be followed, nor destroyed (see NatsDials): no side connection, nothing known.
  if ((options.tls as { handshakeFirst?: unknown } | undefined)?.handshakeFirst) return false;
  const { connect } = await loadPeer<NatsLibrary>('nats', 'NATS connections');
  const { connecting, dials } = NatsDials.follow(
    () =>
      connect({
        ...options,
        name: `connection-health-probe-${randomBytes(4).toString('hex')}`,
        reconnect: false,
        waitOnFirstConnect: false,
      }) as unknown as Promise<NatsConnectionLike>,
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
  } finally {
    // The side connection is never kept: a handshake still under way goes with its sockets.
    dials.destroy();
  }
}
