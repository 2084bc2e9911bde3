import { BehaviorSubject, type Observable } from 'rxjs';
import { abortable } from '../../core/abortable.js';
import type { Clock } from '../../core/clock.js';
import type { ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import { messages } from '../../core/messages.js';
import { optionSecrets } from '../known-secrets.js';

/** Share of maxSessionMs taken off at random, so a fleet started together does not log in again together. */
const SESSION_JITTER = 0.1;

export interface ImapSessionSettings {
  /** Mailbox to select after login, or false. */
  readonly mailbox: string | false;
  /** Re-login after this long (less jitter); undefined = never. */
  readonly maxSessionMs?: number;
  /** The engine's connect deadline: a polite LOGOUT of the old session during a reconnect may use half of it. */
  readonly connectTimeoutMs: number;
  /** The monitor's clock: a session's age is measured in the time its heartbeats are scheduled in. */
  readonly clock: Clock;
  readonly random?: () => number;
}

interface Session<C> {
  readonly client: C;
  readonly openedAt: number;
  /** Age at which the next heartbeat recycles it: maxSessionMs less jitter, or Infinity. */
  readonly lifetimeMs: number;
  /** A beat failed or the socket went: the server may not hear us, so no polite LOGOUT is tried. */
  broken: boolean;
  /** Torn down on purpose: its socket closing is not a loss. */
  ending: boolean;
  stopWatching(): void;
}

/**
 * What both IMAP adapters share: one session (client) at a time, torn down before the next is opened,
 * loss reporting, the live-client stream, recycling after a maximum lifetime, and a shutdown that sends
 * LOGOUT and force-closes at the deadline. A subclass speaks to one client library.
 */
export abstract class ImapAdapter<C extends object> implements ConnectionAdapter {
  readonly kind = 'imap';
  readonly clientChanges$: Observable<C | undefined>;
  private readonly clients = new BehaviorSubject<C | undefined>(undefined);
  private session?: Session<C>;
  /** The last client created, logged in or not: its credentials are known before its login can fail. */
  private newestClient?: C;
  private onLoss?: (error: Error) => void;
  private readonly random: () => number;

  protected constructor(
    readonly target: string,
    private readonly settings: ImapSessionSettings,
    private readonly factory?: () => C | Promise<C>,
  ) {
    this.clientChanges$ = this.clients.asObservable();
    this.random = settings.random ?? Math.random;
  }

  /** Shown in errors: 'imapflow' or 'node-imap'. */
  protected abstract readonly libraryName: string;
  /** Builds a client from the connection options: loads the library with an install hint when missing. */
  protected abstract createClient(): Promise<C>;
  /** Connects and logs in; `signal` aborting means the base class is destroying the client. */
  protected abstract login(client: C, signal: AbortSignal): Promise<void>;
  protected abstract select(client: C, mailbox: string): Promise<void>;
  /** One NOOP; resolves on its tagged OK only. */
  protected abstract noop(client: C): Promise<void>;
  protected abstract isUsable(client: C): boolean;
  /** Sends LOGOUT and resolves once the server answered and the socket is closing. */
  protected abstract logout(client: C): Promise<void>;
  /** Closes the socket at once, without a word to the server, safely in any protocol state. */
  protected abstract destroy(client: C): void;
  /**
   * Keeps an 'error' listener on the client for good (an unheard 'error' would crash the process) and
   * calls `onClose` once when its connection ends; returns what stops the latter.
   */
  protected abstract watch(client: C, onClose: (error: Error) => void): () => void;
  /** The credentials of the connection's own options (login, TLS key passphrase). */
  protected abstract configuredSecrets(): string[];
  /** Where a client keeps the options it was built with (a factory's client carries its own login). */
  protected abstract clientOptions(client: C): unknown;

  /** The login's password, a TLS key's passphrase, and those a factory's client carries (read from the live client). */
  knownSecrets(): string[] {
    const client = this.newestClient;
    return [...this.configuredSecrets(), ...(client ? optionSecrets(this.clientOptions(client)) : [])];
  }

  currentClient(): C | undefined {
    return this.clients.value;
  }

  async open(signal: AbortSignal): Promise<void> {
    await this.endSession(signal, this.settings.connectTimeoutMs / 2);
    signal.throwIfAborted();
    // A client created after the deadline holds no socket yet: nothing to clean up when this gives up.
    const client = await abortable(Promise.resolve(this.factory ? this.factory() : this.createClient()), signal);
    this.newestClient = client;
    const session: Session<C> = {
      client,
      openedAt: this.settings.clock.now(),
      lifetimeMs: this.settings.maxSessionMs ? this.settings.maxSessionMs * (1 - SESSION_JITTER * this.random()) : Infinity,
      broken: false,
      ending: false,
      stopWatching: () => undefined,
    };
    session.stopWatching = this.watch(client, (error) => this.lost(session, error));
    const abandon = () => this.abandon(session);
    signal.addEventListener('abort', abandon, { once: true });
    try {
      await abortable(this.login(client, signal), signal);
      if (this.settings.mailbox !== false) await abortable(this.select(client, this.settings.mailbox), signal);
      signal.throwIfAborted();
    } catch (error) {
      this.abandon(session);
      throw error;
    } finally {
      signal.removeEventListener('abort', abandon);
    }
    this.session = session;
    this.clients.next(client);
  }

  async ping(signal: AbortSignal): Promise<void> {
    const session = this.session;
    if (!session) throw new Error(messages.imapNoSession());
    if (this.onLoss && this.settings.clock.now() - session.openedAt >= session.lifetimeMs) {
      // Recycling is a planned loss: the engine reconnects through its usual path (open() logs the old
      // session out politely, as it is not broken), so the engine needs no second timer for it.
      this.onLoss(new Error(messages.imapSessionRecycled(Math.round(session.lifetimeMs))));
      return;
    }
    try {
      if (!this.isUsable(session.client)) throw new Error(messages.imapUnusable(this.libraryName));
      await abortable(this.noop(session.client), signal);
      if (!this.isUsable(session.client)) throw new Error(messages.imapUnusable(this.libraryName));
      session.broken = false; // answered again after a failed beat (failureThreshold > 1): worth a LOGOUT
    } catch (error) {
      session.broken = true;
      throw error;
    }
  }

  async close(signal: AbortSignal): Promise<void> {
    try {
      await this.endSession(signal, Infinity);
    } finally {
      this.clients.next(undefined);
      this.clients.complete();
    }
  }

  observeLoss(onLoss: (error: Error) => void): () => void {
    this.onLoss = onLoss;
    return () => (this.onLoss = undefined);
  }

  private lost(session: Session<C>, error: Error): void {
    session.broken = true;
    if (session.ending || this.session !== session) return;
    if (this.clients.value === session.client) this.clients.next(undefined);
    this.onLoss?.(error);
  }

  /**
   * Ends the current session: LOGOUT when it still looks healthy (a forced reconnect, a recycle,
   * shutdown), within `politeMs` and the signal; then, or at once when it is broken, the socket is
   * destroyed, so no session is left behind on either side.
   */
  private async endSession(signal: AbortSignal, politeMs: number): Promise<void> {
    const session = this.session;
    if (!session) return;
    this.session = undefined;
    session.ending = true;
    if (this.clients.value === session.client) this.clients.next(undefined);
    try {
      if (!session.broken && this.isUsable(session.client)) await within(this.logout(session.client), signal, politeMs);
    } catch {
      // A LOGOUT that failed or ran out of time: the forced close below ends the session anyway.
    } finally {
      this.abandon(session);
    }
  }

  private abandon(session: Session<C>): void {
    session.ending = true;
    session.stopWatching();
    this.destroy(session.client);
  }
}

/** Waits for `promise` until `signal` aborts or `ms` pass, whichever comes first; always clears its timer. */
async function within(promise: Promise<void>, signal: AbortSignal, ms: number): Promise<void> {
  if (!Number.isFinite(ms)) return abortable(promise, signal);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${ms} ms`)), ms);
  const onAbort = () => controller.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();
  try {
    await abortable(promise, controller.signal);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}
