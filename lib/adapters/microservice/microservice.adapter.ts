import { BehaviorSubject, type Observable } from 'rxjs';
import { abortable } from '../../core/abortable.js';
import type { BeatReport, ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import { messages } from '../../core/messages.js';
import type { MonitorOptions } from '../../core/monitor-options.js';
import type { AdapterContext } from '../connection-kind.js';
import { optionSecrets, urlSecrets } from '../known-secrets.js';
import { recordAppClose, type AppClose } from './app-close.js';
import type { ClientProxyLike } from './client-proxy-like.js';
import type { ProxyOptions, ProxyTransport } from './proxy-transports.js';

/** The adapter of the matching kind, watching one object that `unwrap()` returned. */
interface Inner {
  readonly watched: object;
  readonly adapter: ConnectionAdapter;
  readonly stopObserving?: () => void;
}

/**
 * An app's Nest ClientProxy (RMQ, Redis, MQTT, NATS), proven by the kind that knows its transport's client: the
 * amqp kind on the proxy's amqp-connection-manager, the redis kind on its pub and sub clients, the mqtt kind on its
 * MqttClient, the nats kind on its nats.js connection. That kind's adapter does the beats, the judging of a late
 * flow and the loss events, on a watched definition (it never closes what it watches); this adapter composes it
 * with the proxy's life.
 *
 * Reconnection: open() watches what `unwrap()` returns now, without connect(): an object there means someone
 * connected the proxy (the app, Nest's lazy send()/emit(), the library reconnecting by itself), and the kind
 * waits for that library's own reconnect. A new object is a new connection, and a new adapter of the kind
 * watches it (the old one closed, its listeners off). Only when `unwrap()` throws does open() call
 * `client.connect()` (nothing in Nest calls it at bootstrap; it is the only way back for a Redis pair dropped
 * at a loss, an RMQ manager discarded after a failed connect, a NATS connection nats.js gave up on), paced by
 * the engine's backoff; unless the app itself called the proxy's close() (at run time, or in its
 * onModuleDestroy before the package drains), which the package records: a proxy the app closed is never
 * connected again by the package. The proxy itself is never closed: the app's ClientsModule does that at
 * shutdown.
 *
 * The proxy's `status` stream is not listened to: it replays its last value to a late subscriber, swallows
 * repeats, and stays 'connected' after close() (RMQ, Redis); the kind's own events on the object under the
 * proxy see every loss it would report, and earlier.
 */
export class MicroserviceAdapter implements ConnectionAdapter {
  readonly kind = 'microservice';
  readonly target?: string;
  readonly clientChanges$: Observable<unknown>;
  private readonly clients = new BehaviorSubject<ClientProxyLike | undefined>(undefined);
  private inner?: Inner;
  private onLoss?: (error: Error) => void;
  private closed = false;
  /** Recorded from the first open() on: an adapter built and never opened (under ConnectionHealthTesting) changes nothing. */
  private appClose?: AppClose;

  constructor(
    private readonly name: string,
    private readonly proxy: ClientProxyLike,
    private readonly transport: ProxyTransport,
    private readonly options: MonitorOptions,
    private readonly context: AdapterContext,
  ) {
    this.target = transport.target(proxyOptions(proxy), proxy);
    this.clientChanges$ = this.clients.asObservable();
  }

  /** Passwords of the proxy's options: urls holding them (RMQ urls, MQTT url, NATS servers), password and token fields. */
  knownSecrets(): string[] {
    const options = proxyOptions(this.proxy);
    const list = (value: unknown) => (Array.isArray(value) ? value : [value]);
    const urls = [options?.url, (this.proxy as { url?: unknown }).url, ...list(options?.urls), ...list(options?.servers)];
    return [...optionSecrets(options), ...urls.flatMap((url) => urlSecrets(url))];
  }

  currentClient(): unknown {
    return this.clients.value;
  }

  async open(signal: AbortSignal): Promise<void> {
    this.clients.next(undefined);
    const appClose = (this.appClose ??= recordAppClose(this.proxy));
    let unwrapped = this.unwrapped();
    if (unwrapped === undefined) {
      if (this.closed || appClose.closed()) throw new Error(messages.microserviceClosedByApp());
      await abortable(this.connectProxy(), signal);
      // Closed by the app while it connected: what that connect() made is the app's to close, not to watch.
      if (appClose.closed()) throw new Error(messages.microserviceClosedByApp());
      unwrapped = this.proxy.unwrap();
    }
    const watched = this.transport.watched(unwrapped);
    if (watched !== this.inner?.watched) {
      // A new connection: any close of the app's before it is over (its connect() or send() opened it again).
      appClose.reopened();
      await this.watch(watched, unwrapped, signal);
    }
    await this.inner!.adapter.open(signal);
    this.clients.next(this.proxy);
  }

  ping(signal: AbortSignal): Promise<void | BeatReport> {
    if (!this.inner) return Promise.reject(new Error(messages.microserviceNotOpen()));
    return this.inner.adapter.ping(signal);
  }

  /** The kind's close, which leaves what it watches open; the proxy is the app's to close. */
  async close(signal: AbortSignal): Promise<void> {
    this.closed = true;
    this.appClose?.stop();
    this.clients.next(undefined);
    this.clients.complete();
    await this.dropInner(signal);
  }

  observeLoss(onLoss: (error: Error) => void): () => void {
    this.onLoss = onLoss;
    return () => (this.onLoss = undefined);
  }

  /** What the proxy's `unwrap()` returns, or undefined while it holds no connection (before connect(), after close()). */
  private unwrapped(): unknown {
    try {
      return this.proxy.unwrap();
    } catch {
      return undefined;
    }
  }

  /**
   * connect() of the proxy, its rejection made an Error: RMQ rejects a failed first connect with a plain
   * `{ err, url }`, and every transport rejects a lost connection with the string 'Error: Connection lost...'.
   */
  private async connectProxy(): Promise<void> {
    try {
      await this.proxy.connect();
    } catch (error) {
      if (error instanceof Error) throw new Error(messages.microserviceConnectFailed(this.transport.transport, error.message), { cause: error });
      const inner = (error as { err?: unknown } | null)?.err;
      const why = inner instanceof Error ? inner.message : typeof error === 'string' ? error.replace(/^Error: /, '') : 'rejected without an error';
      throw new Error(messages.microserviceConnectFailed(this.transport.transport, why), { cause: inner instanceof Error ? inner : error });
    }
  }

  /** A new connection under the proxy: the kind's adapter of the old one goes (listeners off), a new one watches it. */
  private async watch(watched: object, unwrapped: unknown, signal: AbortSignal): Promise<void> {
    await this.dropInner(signal);
    signal.throwIfAborted();
    const adapter = this.transport.adapter({ name: this.name, watched, unwrapped, proxy: this.proxy }, this.options, this.context);
    const stopObserving = adapter.observeLoss?.((error) => {
      if (this.inner?.adapter === adapter && !this.closed) this.onLoss?.(error);
    });
    this.inner = { watched, adapter, stopObserving };
  }

  private async dropInner(signal: AbortSignal): Promise<void> {
    const inner = this.inner;
    this.inner = undefined;
    if (!inner) return;
    inner.stopObserving?.();
    // Watched: the kind's close takes its own listeners and channels off, and closes nothing of the app's.
    await inner.adapter.close(signal).catch(() => undefined);
  }
}

function proxyOptions(proxy: ClientProxyLike): ProxyOptions {
  const options = (proxy as { options?: unknown }).options;
  return typeof options === 'object' && options !== null ? (options as ProxyOptions) : undefined;
}
