import type tls from 'node:tls';
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
   * port, secure, auth, tls and allowInsecureAuth out: its clients carry their own.
   */
  host?: string;
  /** Default 993 (IMAPS), or 143 with `secure: false`. */
  port?: number;
  /** TLS from the first byte (IMAPS). Default: true on port 993 and when no port is given, false elsewhere. */
  secure?: boolean;
  /** Required with `host`. */
  auth?: ImapLogin;
  /**
   * node:tls options for IMAPS and STARTTLS alike (ca, servername, rejectUnauthorized, ...), e.g.
   * `{ ca: readFileSync('ca.pem') }` to trust a private CA. Default: none (Node's trusted CAs).
   */
  tls?: tls.ConnectionOptions;
  /**
   * Without TLS from the first byte, the client upgrades with STARTTLS before it logs in, and a server
   * that does not offer it is refused before the password is sent. `true` allows a login in clear (STARTTLS
   * is still used when offered); `false` enforces the rule on loopback too. Default: allowed on a loopback
   * host (localhost, 127.0.0.0/8, ::1), enforced elsewhere.
   */
  allowInsecureAuth?: boolean;
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
   * `new ImapFlow({ host, port, secure, auth, tls, doSTARTTLS, logger: false })`.
   */
  factory?: () => ImapFlowLike | Promise<ImapFlowLike>;
}

export interface NodeImapAdapterOptions extends ImapOptionsBase {
  client: 'node-imap';
  /**
   * Returns an unconnected node-imap client for each session; returning the same instance every time
   * also works (node-imap can connect again). Default: the package creates
   * `new Imap({ host, port, tls: secure, tlsOptions: tls, autotls: 'always', user, password })`.
   */
  factory?: () => NodeImapLike | Promise<NodeImapLike>;
}

/** How to reach and keep one IMAP session, with either client library. */
export type ImapAdapterOptions = ImapFlowAdapterOptions | NodeImapAdapterOptions;
