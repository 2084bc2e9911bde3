import { isLoopbackHost } from '../loopback-host.js';
import type { ImapAdapterOptions } from './imap-adapter.options.js';

const IMAPS_PORT = 993;
const IMAP_PORT = 143;

/** How the package's own client reaches the server, resolved from host, port, secure and allowInsecureAuth. */
export interface ImapTransport {
  readonly port: number;
  /** TLS from the first byte. */
  readonly secure: boolean;
  /** On a cleartext connection: no login unless STARTTLS made it TLS first. */
  readonly startTlsRequired: boolean;
}

/**
 * TLS unless told otherwise: no port and no `secure` means IMAPS on 993; a cleartext port must be
 * upgraded with STARTTLS before the login, unless `allowInsecureAuth` (default: true on a loopback host)
 * says a password may go in clear.
 */
export function imapTransport(options: Pick<ImapAdapterOptions, 'host' | 'port' | 'secure' | 'allowInsecureAuth'>): ImapTransport {
  const secure = options.secure ?? (options.port === undefined || options.port === IMAPS_PORT);
  const port = options.port ?? (secure ? IMAPS_PORT : IMAP_PORT);
  const insecureAllowed = options.allowInsecureAuth ?? isLoopbackHost(options.host ?? '');
  return { port, secure, startTlsRequired: !secure && !insecureAllowed };
}

/** Where a connection points, for health details: its client library, and the server unless a factory builds the clients. */
export function imapTarget(options: ImapAdapterOptions): string {
  return options.factory ? options.client : `${options.client} ${options.host}:${imapTransport(options).port}`;
}
