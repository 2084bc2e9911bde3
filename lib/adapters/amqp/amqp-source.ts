import { abortable, onAbort } from '../../core/abortable.js';
import { messages } from '../../core/messages.js';
import { firstEvent } from '../first-event.js';
import { loadPeer } from '../load-peer.js';
import type { AmqpChannelLike, AmqpChannelModelLike, AmqpConnectionManagerLike, AmqpEmitterLike, AmqpRawConnectionLike, AmqpRecoveringModelLike } from './amqp-like.js';

type AmqpLibrary = typeof import('amqplib');

/**
 * Where the adapter's channels come from: the package's own connection, or the app's (a ChannelModel, an
 * amqp-connection-manager or a recovering model), each reached the way its library allows.
 */
export interface AmqpSource {
  /** What the connection's handle gives while it is up. */
  client(): unknown;
  /**
   * A channel on the current connection, with an 'error' listener (an unheard channel 'error' closes the
   * whole connection). The package's own connection is connected first; the app's is waited for.
   */
  openChannel(confirm: boolean, signal: AbortSignal): Promise<AmqpChannelLike>;
  /** The package's own connection is closed, forced when `signal` aborts; the app's is left as it is. */
  close(signal: AbortSignal): Promise<void>;
}

/** The package's own connection: connected by open(), again after every close, with the engine's backoff. */
export class OwnedAmqpConnection implements AmqpSource {
  private model?: AmqpChannelModelLike;
  private readonly opener = new ChannelOpener();

  constructor(
    private readonly url: string,
    private readonly socketOptions: Record<string, unknown>,
  ) {}

  client(): unknown {
    return this.model;
  }

  async openChannel(confirm: boolean, signal: AbortSignal): Promise<AmqpChannelLike> {
    const model = await this.connect(signal);
    return this.opener.open(() => (confirm ? model.createConfirmChannel() : model.createChannel()), signal);
  }

  async close(signal: AbortSignal): Promise<void> {
    this.opener.close();
    const model = this.model;
    if (!model || isClosed(model.connection)) return;
    // close() waits for the broker's close-ok, which a silent broker never sends.
    const stopForcing = onAbort(signal, () => destroySocket(model.connection));
    try {
      await model.close().catch(() => destroySocket(model.connection));
    } finally {
      stopForcing();
    }
  }

  /** A new connection beside the current one; adopt() makes it the current. */
  async connectAnew(signal: AbortSignal): Promise<AmqpChannelModelLike> {
    const amqp = await loadPeer<AmqpLibrary>('amqplib', 'AMQP connections');
    const attempt = amqp.connect(this.url, this.socketOptions) as unknown as Promise<AmqpChannelModelLike>;
    // Heard here, the loss itself is told by 'close': an unheard connection 'error' would crash the process.
    // A connection that arrives after its attempt was given up is closed at once: no ghost on the broker.
    void attempt.then(
      (model) => {
        model.on('error', () => undefined);
        if (signal.aborted) destroySocket(model.connection);
      },
      () => undefined,
    );
    return abortable(attempt, signal);
  }

  /** Makes `model` the current connection, and drops the one before: it no longer carried anything. */
  adopt(model: AmqpChannelModelLike): void {
    if (this.model && this.model !== model) destroySocket(this.model.connection);
    this.model = model;
  }

  private async connect(signal: AbortSignal): Promise<AmqpChannelModelLike> {
    if (this.model && !isClosed(this.model.connection)) return this.model;
    this.model = await this.connectAnew(signal);
    return this.model;
  }
}

/** An app's amqplib ChannelModel: watched; amqplib never reconnects it, nor does the package. */
export class WatchedAmqpModel implements AmqpSource {
  private readonly opener = new ChannelOpener();

  constructor(private readonly model: AmqpChannelModelLike) {}

  client(): unknown {
    return this.model;
  }

  openChannel(confirm: boolean, signal: AbortSignal): Promise<AmqpChannelLike> {
    if (isClosed(this.model.connection)) return Promise.reject(new Error(messages.amqpAppConnectionClosed()));
    return this.opener.open(() => (confirm ? this.model.createConfirmChannel() : this.model.createChannel()), signal);
  }

  async close(): Promise<void> {
    this.opener.close();
  }
}

/** An app's amqp-connection-manager: watched; it reconnects by itself, and each new connection gets the package's channels. */
export class WatchedAmqpManager implements AmqpSource {
  private readonly opener = new ChannelOpener();

  constructor(private readonly manager: AmqpConnectionManagerLike) {}

  client(): unknown {
    return this.manager;
  }

  async openChannel(confirm: boolean, signal: AbortSignal): Promise<AmqpChannelLike> {
    const current = this.manager.connection;
    // It reconnects on its own schedule (reconnectTimeInSeconds): its next 'connect' brings the connection.
    const model =
      current && !isClosed(current.connection)
        ? current
        : (await nextEvent<{ connection: AmqpChannelModelLike }>(this.manager, 'connect', signal, messages.amqpManagerNotConnected())).connection;
    return this.opener.open(() => (confirm ? model.createConfirmChannel() : model.createChannel()), signal);
  }

  async close(): Promise<void> {
    this.opener.close();
  }
}

/**
 * An app's amqplib 2 recovering model: watched; it reconnects by itself, and opens channels on its current
 * connection. While it has none, its createChannel() would wait with a waiter no one can take back (one per
 * attempt given up during an outage, all opening a channel at once when it comes back), so the package
 * waits for its 'connect' instead.
 */
export class WatchedRecoveringModel implements AmqpSource {
  private readonly opener = new ChannelOpener();

  constructor(private readonly model: AmqpRecoveringModelLike) {}

  client(): unknown {
    return this.model;
  }

  async openChannel(confirm: boolean, signal: AbortSignal): Promise<AmqpChannelLike> {
    if (!this.connected()) await nextEvent(this.model, 'connect', signal, messages.amqpRecoveringNotConnected());
    // Once closed by the app, or out of retries, it rejects with why.
    return this.opener.open(() => (confirm ? this.model.createConfirmChannel() : this.model.createChannel()), signal);
  }

  async close(): Promise<void> {
    this.opener.close();
  }

  /**
   * Whether it holds a connection now. amqplib keeps that in its core (`_core._model`, amqplib 1.1 to 2.x);
   * its events alone cannot tell for a model that was already in an outage when the package came.
   */
  private connected(): boolean {
    const core = (this.model as { _core?: { _model?: unknown } })._core;
    return core === undefined || !('_model' in core) || core._model !== null;
  }
}

/**
 * Opens the package's channels, each with an 'error' listener as soon as it exists; one that opens after its
 * wait was given up is closed at once, and those still opening when the package closes are closed once open.
 */
class ChannelOpener {
  private closed = false;

  open(create: () => Promise<AmqpChannelLike>, signal: AbortSignal): Promise<AmqpChannelLike> {
    const opening = create();
    void opening.then(
      (channel) => {
        channel.on('error', () => undefined);
        if (signal.aborted || this.closed) void channel.close().catch(() => undefined);
      },
      () => undefined,
    );
    return abortable(opening, signal);
  }

  close(): void {
    this.closed = true;
  }
}

/** Resolves with the next `event` of `emitter`; rejects with `message` when `signal` aborts first. Leaves no listener behind. */
async function nextEvent<T>(emitter: AmqpEmitterLike, event: string, signal: AbortSignal, message: string): Promise<T> {
  try {
    return (await firstEvent(emitter, [event], signal)).args[0] as T;
  } catch (error) {
    throw new Error(message, { cause: error });
  }
}

/** Whether an amqplib connection closed, or began to: nothing more goes through it. */
export function isClosed(connection: AmqpRawConnectionLike): boolean {
  return connection.expectSocketClose === true || (connection.stream as { destroyed?: boolean } | undefined)?.destroyed === true;
}

/**
 * Destroys the socket of an amqplib connection, for a close a silent broker would never answer. With an
 * error, so that amqplib runs its socket-error path, which also stops its heartbeat timers.
 */
export function destroySocket(connection: AmqpRawConnectionLike): void {
  (connection.stream as { destroy?(error: Error): void } | undefined)?.destroy?.(new Error(messages.amqpForcedClose()));
}

/**
 * A channel on a connection opened for a race alone: one that comes after its wait was given up is closed
 * at once (the connection itself is dropped then too).
 */
export function channelOn(model: AmqpChannelModelLike, confirm: boolean, signal: AbortSignal): Promise<AmqpChannelLike> {
  const opening = confirm ? model.createConfirmChannel() : model.createChannel();
  void opening.then(
    (channel) => {
      channel.on('error', () => undefined);
      if (signal.aborted) void channel.close().catch(() => undefined);
    },
    () => undefined,
  );
  return abortable(opening, signal);
}
