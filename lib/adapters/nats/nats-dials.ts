import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';

/**
 * The sockets one nats.js connect() of the package's dials. nats.js cannot abort a connect(), and a handshake
 * it gave up on (its timeout: a stalled server, a blackhole) keeps its socket open: each such attempt would
 * leave one on the server, and in the process after app.close(). So the package follows the sockets of each
 * connect() it makes until it settles: those of one that failed, or that the package no longer wants, are
 * destroyed (nats.js's connect() then rejects and clears its timer); those of one that connected are its own.
 *
 * A socket is told apart by the async context it is made in: nats.js dials within the connect() call's. That
 * context lives on in what the connection does later (its message loop runs the app's handlers in it), so a
 * socket counts only while its connect() is still under way; the app's callbacks that nats.js calls during
 * the connect() (an authenticator) run outside it (see outside()). An AsyncLocalStorage makes Node 20 run
 * promise hooks on every promise of the process, so it, and the subscription to the sockets Node makes, are
 * on only while a connect() is followed.
 *
 * TLS-first dials (`tls.handshakeFirst`) go through tls.connect(), which publishes no socket: they are not
 * seen, so the package makes none (see the nats kind's option checks).
 */
export class NatsDials {
  private static followed = 0;
  private readonly sockets = new Set<Socket>();
  private wanted = true;
  private following = true;

  private constructor() {}

  /** Calls `connect`, following the sockets it dials until the connection it resolves to, or its failure. */
  static follow<T>(connect: () => Promise<T>): { readonly connecting: Promise<T>; readonly dials: NatsDials } {
    const dials = new NatsDials();
    if (NatsDials.followed++ === 0) subscribe('net.client.socket', NatsDials.onSocket);
    const connecting = dialling.run(dials, connect);
    void connecting.then(
      () => dials.end(false),
      () => dials.end(true),
    );
    return { connecting, dials };
  }

  /** `callback` of the app's, as nats.js calls it during a connect(): run outside the dial context, so what it dials is its own. */
  static outside<A extends unknown[], R>(callback: (...args: A) => R): (...args: A) => R {
    return (...args) => dialling.exit(() => callback(...args));
  }

  /** The connection is not wanted: its sockets are destroyed, those dialled so far and any it still dials. */
  destroy(): void {
    this.wanted = false;
    for (const socket of this.sockets) socket.destroy();
  }

  private end(failed: boolean): void {
    if (failed) this.destroy();
    this.following = false;
    this.sockets.clear();
    if (--NatsDials.followed > 0) return;
    unsubscribe('net.client.socket', NatsDials.onSocket);
    dialling.disable();
  }

  /** Each socket Node makes while a connect() is followed goes to the dials of the context that makes it. */
  private static readonly onSocket = (message: unknown): void => {
    const dials = dialling.getStore();
    const socket = (message as { socket: Socket }).socket;
    if (!dials?.following) return;
    if (dials.wanted) dials.sockets.add(socket);
    else socket.destroy();
  };
}

const dialling = new AsyncLocalStorage<NatsDials>();
