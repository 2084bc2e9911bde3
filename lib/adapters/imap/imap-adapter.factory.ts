import type { Clock } from '../../core/clock.js';
import type { ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import type { MonitorOptions } from '../../core/monitor-options.js';
import { optionNames, type OptionChecker } from '../../core/option-checker.js';
import type { ImapAdapterOptions, ImapLogin } from './imap-adapter.options.js';
import { ImapFlowAdapter } from './imapflow.adapter.js';
import { NodeImapAdapter } from './node-imap.adapter.js';

export const IMAP_CLIENTS = ['imapflow', 'node-imap'] as const;
/** The options of an IMAP connection, beside those of every connection. */
export const IMAP_OPTIONS = optionNames<ImapAdapterOptions>({
  client: true,
  factory: true,
  host: true,
  port: true,
  secure: true,
  auth: true,
  tls: true,
  allowInsecureAuth: true,
  mailbox: true,
  maxSessionMs: true,
});
export const IMAP_LOGIN_OPTIONS = optionNames<ImapLogin>({ user: true, pass: true });
/** The package each client needs, when the package creates the clients itself. */
const PEERS = { imapflow: 'imapflow', 'node-imap': 'imap' } as const;

/**
 * Checks the options of an IMAP connection and builds the adapter of its client library. Without a
 * factory the package creates the clients, so their library must be installed: checked here, at bootstrap.
 */
export function createImapAdapter(definition: ImapAdapterOptions, options: MonitorOptions, check: OptionChecker, clock: Clock): ConnectionAdapter {
  check.oneOf('client', definition.client, IMAP_CLIENTS, false);
  const library = definition.client === 'imapflow' ? 'ImapFlow' : 'Imap';
  check.fn('factory', definition.factory, false, `() => ${library} | Promise<${library}> returning a new, unconnected client`);
  if (definition.factory) {
    for (const option of ['host', 'port', 'secure', 'auth', 'tls', 'allowInsecureAuth'] as const) {
      check.that(
        definition[option] === undefined,
        option,
        definition[option],
        `Leave it out when you pass a factory: the factory's clients carry their own server, login and TLS settings.`,
      );
    }
  } else {
    check.that(
      definition.host !== undefined,
      'host',
      definition.host,
      `Give host and auth, so that the package creates the ${library} clients, or a factory that returns a new, ` +
        'unconnected client for each session (with @MonitorConnection: decorate the method that creates it).',
    );
    check.text('host', definition.host);
    if (definition.port !== undefined) {
      check.that(
        Number.isInteger(definition.port) && definition.port >= 1 && definition.port <= 65_535,
        'port',
        definition.port,
        'Use a whole number from 1 to 65535, or leave it out for 993 (IMAPS), or 143 with secure: false.',
      );
    }
    check.oneOf('secure', definition.secure, [true, false]);
    check.that(
      definition.tls === undefined || (typeof definition.tls === 'object' && definition.tls !== null && !Array.isArray(definition.tls)),
      'tls',
      definition.tls,
      'Use an object of node:tls options (ca, servername, rejectUnauthorized, ...), or leave it out.',
    );
    check.oneOf('allowInsecureAuth', definition.allowInsecureAuth, [true, false]);
    check.that(
      typeof definition.auth === 'object' && definition.auth !== null,
      'auth',
      definition.auth,
      `Pass { user, pass }, or a factory that builds the ${library} client itself.`,
    );
    check.knownKeys('auth', definition.auth, IMAP_LOGIN_OPTIONS);
    check.text('auth.user', definition.auth?.user);
    check.that(typeof definition.auth?.pass === 'string', 'auth.pass', definition.auth?.pass, 'Use a string.');
  }
  check.that(
    definition.mailbox === undefined || definition.mailbox === false || (typeof definition.mailbox === 'string' && definition.mailbox.trim() !== ''),
    'mailbox',
    definition.mailbox,
    "Use a mailbox name such as 'INBOX', or false to select none.",
  );
  if (definition.maxSessionMs !== undefined) {
    check.duration('maxSessionMs', definition.maxSessionMs);
    check.that(
      definition.maxSessionMs > options.heartbeat.intervalMs,
      'maxSessionMs',
      definition.maxSessionMs,
      `It must exceed heartbeat.intervalMs (${options.heartbeat.intervalMs}), since the lifetime is checked at each heartbeat; raise it or leave it out.`,
    );
  }
  if (!definition.factory) check.needsPeer(PEERS[definition.client], `IMAP connections with client "${definition.client}"`);
  const settings = {
    mailbox: definition.mailbox ?? 'INBOX',
    maxSessionMs: definition.maxSessionMs,
    connectTimeoutMs: options.heartbeat.connectTimeoutMs,
    clock,
  };
  return definition.client === 'imapflow' ? new ImapFlowAdapter(definition, settings) : new NodeImapAdapter(definition, settings);
}
