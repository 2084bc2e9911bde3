import type { ImapFlowLike } from './imapflow-like.js';
import type { NodeImapLike } from './node-imap-like.js';

/** A plain login. */
export interface ImapLogin {
  user: string;
  pass: string;
}

interface ImapOptionsBase {
  /**
   * Where the package's own clients connect, when no `factory` is given. With a factory, leave host,
   * port, secure and auth out: its clients carry their own.
   */
  host?: string;
  /** Default 993 when `secure`, else 143. */
  port?: number;
  /** TLS from the first byte (IMAPS). Default: true on port 993, false elsewhere. */
  secure?: boolean;
  /** Required with `host`. */
  auth?: ImapLogin;
  /**
   * Mailbox selected after each login, so the session can IDLE in it and the app finds it open.
   * Default 'INBOX'; `false` stays in the authenticated state and selects nothing.
   */
  mailbox?: string | false;
  /**
   * Logs in again after this long, less up to 10 % at random so many instances do not recycle together
   * (some servers drop sessions after about 24 h). Checked at each heartbeat, so the re-login happens
   * within `heartbeat.intervalMs` after the lifetime; the connection reads `down` for the first
   * reconnect delay while it does. Default: off.
   */
  maxSessionMs?: number;
}

export interface ImapFlowAdapterOptions extends ImapOptionsBase {
  client: 'imapflow';
  /**
   * Returns a new, unconnected ImapFlow for each session (an ImapFlow cannot connect twice). The
   * package connects it, selects `mailbox`, heartbeats it and closes it. Default: the package creates
   * `new ImapFlow({ host, port, secure, auth, logger: false })`.
   */
  factory?: () => ImapFlowLike | Promise<ImapFlowLike>;
}

export interface NodeImapAdapterOptions extends ImapOptionsBase {
  client: 'node-imap';
  /**
   * Returns an unconnected node-imap client for each session; returning the same instance every time
   * also works (node-imap can connect again). Default: the package creates
   * `new Imap({ host, port, tls: secure, user, password })`.
   */
  factory?: () => NodeImapLike | Promise<NodeImapLike>;
}

/** How to reach and keep one IMAP session, with either client library. */
export type ImapAdapterOptions = ImapFlowAdapterOptions | NodeImapAdapterOptions;
