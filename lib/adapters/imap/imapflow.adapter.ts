import type { ImapFlow } from 'imapflow';
import { messages } from '../../core/messages.js';
import { optionSecrets } from '../known-secrets.js';
import { loadPeer } from '../load-peer.js';
import type { ImapFlowAdapterOptions } from './imap-adapter.options.js';
import type { ImapFlowLike } from './imapflow-like.js';
import { ImapAdapter, type ImapSessionSettings } from './imap.adapter.js';
import { imapTarget, imapTransport } from './imap-transport.js';

/**
 * An IMAP session through imapflow. An ImapFlow connects once, so every session is a new instance. It
 * IDLEs by itself in a selected mailbox (after `autoIdleDelay`, 15 s by default); its noop() breaks IDLE
 * and resolves even when the NOOP failed, so a beat also checks that the client is still usable, and the
 * engine's deadline covers a NOOP that is never answered.
 */
export class ImapFlowAdapter extends ImapAdapter<ImapFlowLike> {
  protected readonly libraryName = 'imapflow';

  constructor(
    private readonly options: ImapFlowAdapterOptions,
    settings: ImapSessionSettings,
    /** The package to load; tests pass a missing one. */
    private readonly peerName = 'imapflow',
  ) {
    super(imapTarget(options), settings, options.factory);
  }

  protected async createClient(): Promise<ImapFlowLike> {
    const { ImapFlow: Client } = await loadPeer<{ ImapFlow: typeof ImapFlow }>(this.peerName, 'IMAP connections with client "imapflow"');
    const { host, auth, tls } = this.options;
    const { port, secure, startTlsRequired } = imapTransport(this.options);
    // doSTARTTLS: true upgrades before the login and fails without sending it when the server cannot;
    // left out, imapflow still upgrades whenever STARTTLS is offered. (With secure, imapflow refuses it.)
    // Its default logger writes pino JSON to stdout; an app that wants it passes a factory.
    return new Client({ host, port, secure, auth, tls, ...(startTlsRequired ? { doSTARTTLS: true } : {}), logger: false });
  }

  protected async login(client: ImapFlowLike): Promise<void> {
    try {
      await client.connect();
    } catch (error) {
      // imapflow's own words ("Server does not support STARTTLS") say neither that the password stayed
      // home nor how to go on; a failed TLS handshake keeps its own reason (an untrusted certificate, say).
      if ((error as { tlsFailed?: boolean })?.tlsFailed && !client.capabilities.has('STARTTLS')) {
        throw new Error(messages.imapStartTlsMissing(), { cause: error });
      }
      // connect() also runs STARTTLS, ID, ENABLE: only a refused AUTHENTICATE or LOGIN is a refused login.
      throw explained(error, (error as { authenticationFailed?: boolean })?.authenticationFailed ? 'authentication' : 'the connection');
    }
  }

  protected async select(client: ImapFlowLike, mailbox: string): Promise<void> {
    try {
      await client.mailboxOpen(mailbox);
    } catch (error) {
      throw explained(error, `to select "${mailbox}"`);
    }
  }

  protected noop(client: ImapFlowLike): Promise<void> {
    return client.noop();
  }

  protected isUsable(client: ImapFlowLike): boolean {
    return client.usable;
  }

  /** Resolves once the server answered LOGOUT (or the connection is gone) and the socket is closed. */
  protected async logout(client: ImapFlowLike): Promise<void> {
    await client.logout();
  }

  /** Closes the socket without LOGOUT; idempotent, and it rejects whatever is still waiting. */
  protected destroy(client: ImapFlowLike): void {
    client.close();
  }

  protected configuredSecrets(): string[] {
    return optionSecrets(this.options);
  }

  protected clientOptions(client: ImapFlowLike): unknown {
    return (client as unknown as { options?: unknown }).options;
  }

  protected watch(client: ImapFlowLike, onClose: (error: Error) => void): () => void {
    let lastError: Error | undefined;
    client.on('error', (error: Error) => (lastError = error));
    const listener = () => {
      const bye = client.byeReason;
      onClose(bye || !lastError ? new Error(messages.imapServerClosed(bye, false)) : lastError);
    };
    client.once('close', listener);
    return () => client.removeListener('close', listener);
  }
}

/** What imapflow puts on the error of a command the server refused. */
interface ImapFlowCommandError {
  responseStatus?: string;
  responseText?: string;
  serverResponseCode?: string;
}

/**
 * imapflow rejects a refused command with only "Command failed"; the server's own words (node-imap shows
 * them: "Authentication failed.") and its response code are on the error, so the reason shows those.
 */
function explained(error: unknown, what: string): unknown {
  const { responseStatus, responseText, serverResponseCode } = (error ?? {}) as ImapFlowCommandError;
  if (!(error instanceof Error) || (responseText === undefined && serverResponseCode === undefined)) return error;
  return new Error(messages.imapRefused(what, responseStatus, serverResponseCode, responseText), { cause: error });
}
