import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { subscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
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
  followDials();
  const dials = new SideDials();
  const connecting = sideDials.run(dials, () =>
    connect({
      ...options,
      name: `connection-health-probe-${randomBytes(4).toString('hex')}`,
      reconnect: false,
      waitOnFirstConnect: false,
    }),
  ) as unknown as Promise<NatsConnectionLike>;
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
  } finally {
    dials.end();
  }
}

/**
 * The sockets a side connection dialled. nats.js cannot abort a connect(), and a handshake it gave up on
 * (its timeout) keeps its socket open: into a stalled server or a blackhole, each judgement would leave one
 * (and its timer, until the timeout), on the server and in the process after app.close(). So the probe
 * destroys them itself once it has its answer; nats.js's connect() then rejects and clears its timer.
 */
class SideDials {
  private readonly sockets = new Set<Socket>();
  private ended = false;

  add(socket: Socket): void {
    if (this.ended) socket.destroy();
    else this.sockets.add(socket);
  }

  end(): void {
    this.ended = true;
    for (const socket of this.sockets) socket.destroy();
  }
}

/** Which side connection, if any, the code dialling a socket works for: nats.js dials inside the probe's async context. */
const sideDials = new AsyncLocalStorage<SideDials>();
let followingDials = false;

/** Listens to the client sockets Node makes, from the first probe on (an app that never judges a flow pays nothing). */
function followDials(): void {
  if (followingDials) return;
  followingDials = true;
  subscribe('net.client.socket', (message) => sideDials.getStore()?.add((message as { socket: Socket }).socket));
}
