import { randomBytes } from 'node:crypto';
import type tls from 'node:tls';
import type { Client, IFrame, IMessage, IStompSocket, StompConfig } from '@stomp/stompjs';
import type WebSocket from 'ws';
import { BehaviorSubject, type Observable } from 'rxjs';
import { abortable, onAbort } from '../../core/abortable.js';
import type { ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import { messages } from '../../core/messages.js';
import { throttleReport, type CallbackReport } from '../../core/user-callback.js';
import { headerSecrets, optionSecrets } from '../known-secrets.js';
import { loadPeer } from '../load-peer.js';
import { applyTcpKeepAlive, type TcpKeepAliveOptions } from '../tcp-keepalive.js';
import { stompDelivery } from './stomp-delivery.js';
import type { StompEndpoint, StompSubscriptionDefinition } from './stomp-options.js';
import { recordStompSession, stompSession } from './stomp-session.js';
import { StompTcpSocket } from './stomp-tcp.socket.js';

type StompLibrary = typeof import('@stomp/stompjs');
type WsLibrary = typeof import('ws');

/** Everything the adapter needs, checked and resolved (see createStompAdapter). */
export interface StompAdapterSettings {
  readonly endpoint: StompEndpoint;
  /** login, passcode, host (vhost) and the user's extra CONNECT headers. */
  readonly connectHeaders: Record<string, string>;
  readonly heartbeat: { readonly outgoingMs: number; readonly incomingMs: number; readonly toleranceMultiplier: number };
  readonly probeDestination: string;
  readonly subscriptions: readonly StompSubscriptionDefinition[];
  readonly keepAlive: TcpKeepAliveOptions;
}

interface Session {
  readonly client: Client;
  /** Resolves with the CONNECTED frame. */
  readonly connected: Promise<IFrame>;
  /** CONNECTED arrived and every subscription is confirmed: the engine may beat it. */
  ready: boolean;
  /** Lost, abandoned or closed on purpose: its callbacks no longer speak. */
  over: boolean;
  /** Rejects when the session ends before it was ready, so open() stops waiting at once. */
  readonly failure: Promise<never>;
  fail(error: Error): void;
  /** The WebSocket's last error (ECONNREFUSED, a TLS failure): its close event does not say. */
  socketError?: Error;
}

/** The STOMP versions offered on a WebSocket as subprotocols, as stompjs itself does for brokerURL. */
const WEBSOCKET_PROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

/**
 * A STOMP session through @stomp/stompjs, over raw TCP (our StompTcpSocket) or WebSocket (`ws`).
 *
 * The engine owns reconnection: stompjs' own loop is switched off (reconnectDelay 0) and every open()
 * builds a fresh Client after discarding the previous one, so there is never a second session, nor a
 * reconnect the engine's state does not know about. A session is ready once CONNECTED arrived and the
 * broker confirmed (RECEIPT) the probe subscription and the user's subscriptions, made again each time.
 *
 * The heartbeat is a message round trip through the broker: SEND to a destination only this process
 * subscribes to, resolved when that very message comes back. STOMP's wire heart-beats are negotiated too,
 * with `discardWebsocketOnCommFailure`, so a silent broker is also noticed between beats, and the broker
 * notices us; but they only prove the socket, not that the broker still routes messages.
 */
export class StompAdapter implements ConnectionAdapter {
  readonly kind = 'stomp';
  readonly target: string;
  readonly clientChanges$: Observable<unknown>;
  private readonly clients = new BehaviorSubject<Client | undefined>(undefined);
  private readonly instanceId = randomBytes(6).toString('hex');
  private session?: Session;
  private onLoss?: (error: Error) => void;
  /** Beats waiting for their message to come back, by message body. */
  private readonly pending = new Map<string, { resolve(): void; reject(error: Error): void }>();
  private sequence = 0;
  /** Per subscription, across sessions: a poison message redelivered in a loop is logged once a minute. */
  private readonly subscriptionReports: readonly CallbackReport[];

  constructor(
    private readonly settings: StompAdapterSettings,
    /** The connection's name and where a failing onMessage is logged. */
    private readonly owner: { readonly connection: string; readonly report: CallbackReport },
  ) {
    this.target = settings.endpoint.target;
    this.clientChanges$ = this.clients.asObservable();
    this.subscriptionReports = settings.subscriptions.map(() => throttleReport(owner.report));
  }

  /** The passcode and every credential CONNECT header (from the URL too), and the TLS key's passphrase. */
  knownSecrets(): string[] {
    const { endpoint, connectHeaders } = this.settings;
    return [endpoint.passcode ?? '', ...headerSecrets(connectHeaders), ...optionSecrets(endpoint.tls)];
  }

  currentClient(): unknown {
    return this.clients.value;
  }

  async open(signal: AbortSignal): Promise<void> {
    this.endSession();
    const stomp = await loadPeer<StompLibrary>('@stomp/stompjs', 'STOMP connections');
    const ws = this.settings.endpoint.transport === 'websocket' ? await loadPeer<WsLibrary>('ws', 'STOMP over WebSocket') : undefined;
    signal.throwIfAborted();
    const session = this.startSession(stomp, ws);
    this.session = session;
    const abandon = () => this.abandon(session, signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
    signal.addEventListener('abort', abandon, { once: true });
    try {
      const connected = await Promise.race([session.connected, session.failure]);
      const { outgoingMs, incomingMs } = this.settings.heartbeat;
      recordStompSession(session.client, connected, outgoingMs, incomingMs, Date.now());
      await Promise.race([this.subscribeAll(session), session.failure]);
      signal.throwIfAborted();
    } catch (error) {
      this.abandon(session, error as Error);
      throw error;
    } finally {
      signal.removeEventListener('abort', abandon);
    }
    session.ready = true;
    this.clients.next(session.client);
  }

  async ping(signal: AbortSignal): Promise<void> {
    const session = this.session;
    if (!session?.ready || !session.client.connected) throw new Error(messages.stompNoSession());
    const body = `${this.instanceId}-${++this.sequence}`;
    const echoed = new Promise<void>((resolve, reject) => this.pending.set(body, { resolve, reject }));
    try {
      // A topic keeps no copy of a probe nobody hears; `persistent: false` spares a queue's disk if one is chosen.
      session.client.publish({ destination: this.settings.probeDestination, body, headers: { persistent: 'false' } });
      await abortable(echoed, signal);
    } finally {
      this.pending.delete(body);
    }
  }

  /** DISCONNECT with a receipt, awaited until `signal` aborts; then the socket is dropped. */
  async close(signal: AbortSignal): Promise<void> {
    const session = this.session;
    this.session = undefined;
    this.clients.next(undefined);
    this.clients.complete();
    if (!session || session.over) return;
    session.over = true;
    session.fail(new Error(messages.stompClosedOnPurpose()));
    const { client } = session;
    if (!client.connected) return client.deactivate({ force: true });
    // stompjs sends DISCONNECT with a receipt, closes the socket when the RECEIPT arrives, and resolves
    // once the socket is closed; a forced deactivate() meanwhile resolves it as well.
    const closed = client.deactivate();
    const stopForcing = onAbort(signal, () => void client.deactivate({ force: true }));
    try {
      await closed;
    } finally {
      stopForcing();
    }
  }

  observeLoss(onLoss: (error: Error) => void): () => void {
    this.onLoss = onLoss;
    return () => (this.onLoss = undefined);
  }

  private startSession(stomp: StompLibrary, ws: WsLibrary | undefined): Session {
    const { heartbeat, connectHeaders } = this.settings;
    let fail: (error: Error) => void = () => undefined;
    const failure = new Promise<never>((_, reject) => (fail = reject));
    failure.catch(() => undefined); // nobody listens once the session is ready
    const config: StompConfig = {
      webSocketFactory: () => this.createSocket(session, ws),
      connectHeaders,
      heartbeatOutgoing: heartbeat.outgoingMs,
      heartbeatIncoming: heartbeat.incomingMs,
      heartbeatToleranceMultiplier: heartbeat.toleranceMultiplier,
      // The engine reconnects with its own backoff; stompjs must never reconnect behind its back.
      reconnectDelay: 0,
      // Without it a silent broker is never noticed over TCP: close() waits for a FIN that never comes.
      discardWebsocketOnCommFailure: true,
      // The engine's connect deadline bounds the attempt.
      connectionTimeout: 0,
      debug: () => undefined,
    };
    const client = new stomp.Client(config);
    const connected = new Promise<IFrame>((resolve) => (client.onConnect = resolve));
    const session: Session = { client, connected, ready: false, over: false, failure, fail: (error) => fail(error) };
    client.onStompError = (frame: IFrame) => this.ended(session, new Error(messages.stompBrokerError(frame.headers.message, frame.body)));
    client.onHeartbeatLost = () => {
      const periodMs = stompSession(client)?.heartbeat.incomingMs || heartbeat.incomingMs;
      this.ended(session, new Error(messages.stompHeartbeatLost(periodMs * heartbeat.toleranceMultiplier)));
    };
    client.onWebSocketClose = (event?: { code?: number; reason?: string }) =>
      this.ended(session, new Error(messages.stompClosed(session.socketError?.message || event?.reason || '', event?.code)));
    client.activate();
    return session;
  }

  private createSocket(session: Session, ws: WsLibrary | undefined): IStompSocket {
    const { endpoint, keepAlive } = this.settings;
    if (!ws) return new StompTcpSocket({ host: endpoint.host, port: endpoint.port, tls: endpoint.tls, keepAlive }) as unknown as IStompSocket;
    const socket: WebSocket = new ws.WebSocket(endpoint.webSocketUrl as string, WEBSOCKET_PROTOCOLS, { ...(endpoint.tls as tls.ConnectionOptions | undefined) });
    socket.on('upgrade', (response) => void applyTcpKeepAlive(response.socket, keepAlive).catch(() => undefined));
    // An unheard 'error' would crash the process; 'close' follows and reports.
    socket.on('error', (error) => (session.socketError = error));
    return socket as unknown as IStompSocket;
  }

  /** Makes the probe subscription and the user's, and waits until the broker confirmed all of them. */
  private async subscribeAll(session: Session): Promise<void> {
    const { client } = session;
    const confirmations: Array<Promise<unknown>> = [];
    const subscribe = (destination: string, onMessage: (message: IMessage) => void, headers: Record<string, string> = {}) => {
      const receipt = `${this.instanceId}-subscribe-${++this.sequence}`;
      confirmations.push(new Promise((resolve) => client.watchForReceipt(receipt, resolve)));
      client.subscribe(destination, onMessage, { ...headers, receipt });
    };
    subscribe(this.settings.probeDestination, (message) => this.pending.get(message.body)?.resolve());
    this.settings.subscriptions.forEach(({ destination, headers, onMessage }, i) => {
      const place = `the onMessage handler of ${destination}`;
      const report = this.subscriptionReports[i] as CallbackReport;
      subscribe(destination, stompDelivery(onMessage, { connection: this.owner.connection, report, place, headers, client }), headers);
    });
    await Promise.all(confirmations);
  }

  /** The session ended without being asked to: before it was ready open() fails, after it a loss is reported. */
  private ended(session: Session, error: Error): void {
    if (session.over) return;
    const wasReady = session.ready;
    this.abandon(session, error);
    if (wasReady) this.onLoss?.(error);
  }

  /** Drops a session at once, without a word to the broker: it is broken, or no longer wanted. */
  private abandon(session: Session, error: Error): void {
    if (session.over) return;
    session.over = true;
    session.fail(error);
    if (session.ready) {
      session.ready = false;
      if (this.clients.value === session.client) this.clients.next(undefined);
    }
    // A beat in flight would otherwise wait out its deadline for a message that cannot come.
    for (const beat of this.pending.values()) beat.reject(error);
    this.pending.clear();
    void session.client.deactivate({ force: true });
  }

  /** Tears down the previous session before a new one, so sessions never pile up. */
  private endSession(): void {
    const session = this.session;
    this.session = undefined;
    if (session) this.abandon(session, new Error(messages.stompReplaced()));
  }
}
