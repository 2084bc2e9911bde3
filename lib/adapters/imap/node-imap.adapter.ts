import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type Imap from 'imap';
import { messages } from '../../core/messages.js';
import { optionSecrets } from '../known-secrets.js';
import { loadPeer } from '../load-peer.js';
import type { NodeImapAdapterOptions } from './imap-adapter.options.js';
import type { NodeImapLike } from './node-imap-like.js';
import { ImapAdapter, type ImapSessionSettings } from './imap.adapter.js';
import { imapTarget, imapTransport } from './imap-transport.js';

type CommandCallback = (error?: Error) => void;

/** The parts of node-imap's Connection (0.8.x) this adapter needs that its public API lacks. */
interface NodeImapInternals {
  /** `promote` may be left out, the callback then taking its place. */
  _enqueue(command: string, promote?: boolean | CommandCallback, callback?: CommandCallback): void;
  _sock?: Socket;
  _parser?: EventEmitter;
}

const internals = (client: NodeImapLike) => client as unknown as NodeImapInternals;

/**
 * An IMAP session through node-imap (`imap` 0.8). node-imap IDLEs by itself whenever it has nothing to
 * do, has no public NOOP and no response deadline of its own; this adapter supplies both (see noop()).
 */
export class NodeImapAdapter extends ImapAdapter<NodeImapLike> {
  protected readonly libraryName = 'node-imap';
  /** Clients that already carry this adapter's 'error' listener: a factory may return the same one again. */
  private readonly withErrorSink = new WeakSet<NodeImapLike>();
  private readonly lastErrors = new WeakMap<NodeImapLike, Error>();
  private readonly byeTexts = new WeakMap<NodeImapLike, string>();

  constructor(
    private readonly options: NodeImapAdapterOptions,
    settings: ImapSessionSettings,
    /** The package to load; tests pass a missing one. */
    private readonly peerName = 'imap',
  ) {
    super(imapTarget(options), settings, options.factory);
  }

  protected async createClient(): Promise<NodeImapLike> {
    const { default: Connection } = await loadPeer<{ default: typeof Imap }>(this.peerName, 'IMAP connections with client "node-imap"');
    const { host, auth, tls } = this.options;
    const { port, secure, startTlsRequired } = imapTransport(this.options);
    // autotls 'always' upgrades whenever the server offers STARTTLS. node-imap has no mode that refuses a
    // server without it ('required' upgrades only when the server demands it, LOGINDISABLED, and else
    // logs in in clear): refuseCleartextLogin() is that refusal.
    const client = new Connection({ host, port, tls: secure, tlsOptions: tls, autotls: 'always', user: auth!.user, password: auth!.pass });
    if (startTlsRequired) refuseCleartextLogin(client);
    return client;
  }

  protected login(client: NodeImapLike): Promise<void> {
    this.lastErrors.delete(client);
    this.byeTexts.delete(client);
    return new Promise<void>((resolve, reject) => {
      const done = (error?: Error) => {
        client.removeListener('ready', onReady);
        client.removeListener('error', done);
        client.removeListener('close', onClose);
        if (error) reject(error);
        else resolve();
      };
      const onReady = () => done();
      const onClose = () => done(this.lastErrors.get(client) ?? new Error(messages.imapClosedDuringLogin()));
      client.once('ready', onReady);
      client.once('error', done);
      client.once('close', onClose);
      client.connect();
      // node-imap answers a BYE by closing without telling why; the reason is worth a loss report.
      internals(client)._parser?.on('untagged', (info: { type?: string; text?: unknown }) => {
        if (info.type === 'bye') this.byeTexts.set(client, String(info.text ?? ''));
      });
    });
  }

  protected select(client: NodeImapLike, mailbox: string): Promise<void> {
    return new Promise<void>((resolve, reject) => client.openBox(mailbox, false, (error) => (error ? reject(error) : resolve())));
  }

  /**
   * node-imap sends its own NOOP and IDLE with the command name as the tag ("NOOP NOOP"), so their tagged
   * answers never reach a callback: `_enqueue('NOOP', cb)` never calls back. It recognises them by exact,
   * upper-case name, while IMAP commands are case-insensitive (RFC 3501 section 9): 'noop' is sent as an
   * ordinary "A<n> noop" whose tagged OK (or NO/BAD) calls back like any command. Promoted to the head of
   * the queue, it waits only for the command in progress. While IDLE runs, _enqueue first sends DONE and
   * sends the NOOP after IDLE's tagged OK; once the queue is empty node-imap enters IDLE again by itself.
   */
  protected noop(client: NodeImapLike): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      internals(client)._enqueue('noop', true, (error) => (error ? reject(error) : resolve())),
    );
  }

  protected isUsable(client: NodeImapLike): boolean {
    return client.state === 'authenticated' && internals(client)._sock?.writable === true;
  }

  /** end() queues LOGOUT (ending IDLE first) and closes the socket after its answer. */
  protected logout(client: NodeImapLike): Promise<void> {
    if (client.state === 'disconnected') return Promise.resolve();
    return new Promise<void>((resolve) => {
      client.once('close', () => resolve());
      client.end();
    });
  }

  /**
   * Not client.destroy(): it only half-closes the socket and forgets the request in progress, and an
   * answer still arriving (IDLE's "+ idling", say) then dereferences that request and throws a TypeError
   * from the socket's 'data' handler, which crashes the process. Destroying the socket stops all reading;
   * node-imap's 'close' handler then clears its timers.
   */
  protected destroy(client: NodeImapLike): void {
    internals(client)._sock?.destroy();
  }

  protected configuredSecrets(): string[] {
    return optionSecrets(this.options);
  }

  protected clientOptions(client: NodeImapLike): unknown {
    return (client as unknown as { _config?: unknown })._config;
  }

  protected watch(client: NodeImapLike, onClose: (error: Error) => void): () => void {
    if (!this.withErrorSink.has(client)) {
      this.withErrorSink.add(client);
      client.on('error', (error: Error) => this.lastErrors.set(client, error));
    }
    const listener = (hadError: boolean) => {
      const bye = this.byeTexts.get(client);
      const error = this.lastErrors.get(client);
      onClose(bye !== undefined || !error ? new Error(messages.imapServerClosed(bye, hadError)) : error);
    };
    client.once('close', listener);
    return () => client.removeListener('close', listener);
  }
}

/** The commands that carry a credential: LOGIN, and AUTHENTICATE with its initial response. */
const CREDENTIAL_COMMAND = /^(?:LOGIN|AUTHENTICATE)\b/i;

/**
 * Makes node-imap fail, instead of write, a command that would carry the password over a socket that is
 * not TLS: the STARTTLS that autotls 'always' runs when it is offered makes the socket TLS first. The
 * login sequence reports the failure as an 'error' and closes the connection, so login() rejects with it.
 */
function refuseCleartextLogin(client: Imap): void {
  const inner = internals(client);
  const enqueue = inner._enqueue;
  inner._enqueue = function (this: NodeImapInternals, command, promote, callback) {
    if (!CREDENTIAL_COMMAND.test(command) || (this._sock as TLSSocket | undefined)?.encrypted === true) {
      return enqueue.call(this, command, promote, callback);
    }
    const done = typeof promote === 'function' ? promote : callback;
    process.nextTick(() => done?.(new Error(messages.imapStartTlsMissing())));
  };
}
