import { randomBytes } from 'node:crypto';
import { abortable } from '../../core/abortable.js';
import { NatsDials } from './nats-dials.js';
import { natsConnect, type NatsLibraryName } from './nats-library.js';

/**
 * Whether the server answers a new connection along the same path (`options`: the server alone, TLS, no
 * credentials; nats.js's reconnect off): connected and a PING answered, or the connection refused by the
 * server itself (an authorization violation). While a connection's own flow stays silent, an answer here says
 * that flow died; no answer says nothing (a stalled server, a path down for everyone). Resolves false when
 * `signal` aborts first; the side connection is closed in any case, its sockets destroyed. It is made by
 * `library`, the one of the connection judged (its options are that library's).
 */
export async function serverAnswersAnew(library: NatsLibraryName, options: Record<string, unknown>, signal: AbortSignal): Promise<boolean> {
  // A TLS-first dial cannot be followed, nor destroyed (see NatsDials): no side connection, nothing known.
  if ((options.tls as { handshakeFirst?: unknown } | undefined)?.handshakeFirst) return false;
  const connect = await natsConnect(library);
  const { connecting, dials } = NatsDials.follow(() =>
    connect({
      ...options,
      name: `connection-health-probe-${randomBytes(4).toString('hex')}`,
      reconnect: false,
      waitOnFirstConnect: false,
    }),
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
    return !signal.aborted && isAuthorizationRefusal(error);
  } finally {
    // The side connection is never kept: a handshake still under way goes with its sockets.
    dials.destroy();
  }
}

/**
 * The server refused the side connection's credentials (or their absence): 2.x says so by a code, 3.x by the
 * error's class (AuthorizationError, UserAuthenticationExpiredError), which has no code.
 */
function isAuthorizationRefusal(error: unknown): boolean {
  const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
  return /AUTHORIZATION_VIOLATION|AUTHENTICATION/i.test(String(code ?? '')) || name === 'AuthorizationError' || name === 'UserAuthenticationExpiredError';
}
