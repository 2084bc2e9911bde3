import type tls from 'node:tls';
import { messages } from '../../core/messages.js';
import { isSecretHeader } from '../known-secrets.js';
import { optionNames, type OptionChecker } from '../../core/option-checker.js';
import { isLoopbackHost } from '../loopback-host.js';
import type { TcpKeepAliveOptions } from '../tcp-keepalive.js';
import { parseUrlOption } from '../url-option.js';
import type { StompMessage } from './stomp-message.js';

/** A subscription the adapter makes on every new session, so it survives reconnects. */
export interface StompSubscriptionDefinition {
  /** Where to subscribe, e.g. `/queue/orders` or `/topic/prices`. */
  destination: string;
  /**
   * SUBSCRIBE headers, e.g. `{ ack: 'client-individual' }` so that messages a dead session never
   * acknowledged are delivered again, or RabbitMQ's `durable` / `auto-delete`. Default: none (auto ack).
   */
  headers?: Record<string, string>;
  /**
   * Called for each MESSAGE; call `message.ack()` here when `headers.ack` asks for acknowledgements. It
   * may be async. One that throws or rejects is logged and never crashes the process; unless it already
   * acked or nacked, its message is NACKed under `client` and `client-individual` ack, and lost to the
   * app under `auto`.
   */
  onMessage(message: StompMessage): void | Promise<unknown>;
}

/** The STOMP heart-beat negotiated on CONNECT: the wire-level liveness check, below the round-trip probe. */
export interface StompHeartbeatOptions {
  /** How often we offer to send a heart-beat; 0 sends none. Default: heartbeat.intervalMs, at most 10 000. */
  outgoingMs?: number;
  /**
   * How often we ask the broker to send one; 0 asks for none. A session silent for longer than
   * toleranceMultiplier times the negotiated period is dropped and reported lost.
   * Default: heartbeat.intervalMs, at most 10 000.
   */
  incomingMs?: number;
  /** Periods of silence tolerated before the session is dropped. Default 2. */
  toleranceMultiplier?: number;
}

export interface StompProbeOptions {
  /**
   * Where each heartbeat's message goes and comes back from: the adapter subscribes to it on every
   * session. It must route a message back to its sender; a topic does on ActiveMQ and RabbitMQ.
   * Default: `/topic/connection-health.<name>.<random>`, unique per process.
   */
  destination?: string;
}

export interface StompAdapterOptions {
  /**
   * Where the broker listens: `stomp://host:61613`, `stomp+ssl://host:61614`, `ws://host:15674/ws` or
   * `wss://...`. Credentials in the URL (`stomp://user:pass@host`) are used as login and passcode and
   * never shown. Give either `url` or `host`.
   */
  url?: string;
  host?: string;
  /** Default 61613, or 61614 with `tls`. */
  port?: number;
  /** 'tcp' (STOMP on a raw TCP or TLS connection) or 'websocket' (needs `url`). Default: from the URL, else 'tcp'. */
  transport?: 'tcp' | 'websocket';
  login?: string;
  passcode?: string;
  /** The CONNECT `host` header: RabbitMQ's virtual host. Default: not sent (the broker's default vhost). */
  vhost?: string;
  /** Further CONNECT headers, e.g. a client-id. */
  connectHeaders?: Record<string, string>;
  /** TLS: true for the defaults, or node:tls options (ca, cert, key, servername, ...). Default: off, unless the URL says ssl or wss. */
  tls?: boolean | tls.ConnectionOptions;
  /**
   * Credentials (login, passcode, or a connect header such as `authorization` or `token`) sent without
   * TLS to a host that is not loopback are logged as a warning at bootstrap. `true` silences it (a trusted
   * network); `false` warns for a loopback host too. Default: no warning for localhost, 127.0.0.0/8 and ::1.
   */
  allowInsecureAuth?: boolean;
  /** Kernel keepalive of the broker connection (TCP and WebSocket alike). Default: idle 30 000 ms. */
  keepAlive?: TcpKeepAliveOptions;
  stompHeartbeat?: StompHeartbeatOptions;
  probe?: StompProbeOptions;
  /** Made again on every session; see also keepStompSubscription() for subscriptions made at run time. */
  subscriptions?: StompSubscriptionDefinition[];
}

/** Where and how to connect, resolved from url or host/port. */
export interface StompEndpoint {
  transport: 'tcp' | 'websocket';
  host: string;
  port: number;
  /** node:tls options when TLS is on. */
  tls?: tls.ConnectionOptions;
  /** The WebSocket URL, credentials removed. */
  webSocketUrl?: string;
  /** Shown in health details: no credentials, no query. */
  target: string;
  login?: string;
  passcode?: string;
}

/** The options of a STOMP connection, beside those of every connection. */
export const STOMP_OPTIONS = optionNames<StompAdapterOptions>({
  url: true,
  host: true,
  port: true,
  transport: true,
  login: true,
  passcode: true,
  vhost: true,
  connectHeaders: true,
  tls: true,
  allowInsecureAuth: true,
  keepAlive: true,
  stompHeartbeat: true,
  probe: true,
  subscriptions: true,
});
export const STOMP_HEARTBEAT_OPTIONS = optionNames<StompHeartbeatOptions>({ outgoingMs: true, incomingMs: true, toleranceMultiplier: true });
export const STOMP_PROBE_OPTIONS = optionNames<StompProbeOptions>({ destination: true });
export const STOMP_SUBSCRIPTION_OPTIONS = optionNames<StompSubscriptionDefinition>({ destination: true, headers: true, onMessage: true });

const TCP_SCHEMES: Record<string, boolean> = {
  'stomp:': false,
  'tcp:': false,
  'stomp+ssl:': true,
  'stomp+tls:': true,
  'stomps:': true,
  'ssl:': true,
  'tls:': true,
};
const WEBSOCKET_SCHEMES: Record<string, boolean> = { 'ws:': false, 'wss:': true };
const DEFAULT_PORT = 61_613;
const DEFAULT_TLS_PORT = 61_614;
const URL_FORMS = 'stomp://host:61613, stomp+ssl://host:61614, ws://host:15674/ws or wss://...';

/**
 * Checks the STOMP options of a connection (keepAlive aside, checked with every kind's) and resolves where
 * to connect. Every mistake names the option, the value and the fix, like the engine's own checks.
 */
export function checkStompOptions(check: OptionChecker, options: StompAdapterOptions): StompEndpoint {
  const { url, host, transport } = options;
  check.oneOf('transport', transport, ['tcp', 'websocket']);
  check.that(url === undefined || host === undefined, 'host', host, 'Give either url or host (with port), not both.');
  for (const key of ['login', 'passcode', 'vhost'] as const) {
    // Only a value that is not a string fails here; the checker never shows a string under a credential's option.
    if (options[key] !== undefined) check.that(typeof options[key] === 'string', key, options[key], 'Use a string.');
  }
  if (options.vhost !== undefined) check.text('vhost', options.vhost);
  checkHeaders(check, 'connectHeaders', options.connectHeaders);
  check.that(
    options.tls === undefined || typeof options.tls === 'boolean' || (typeof options.tls === 'object' && options.tls !== null),
    'tls',
    options.tls,
    'Use true, false, or an object of node:tls options (ca, cert, key, servername, ...).',
  );

  const beat = options.stompHeartbeat;
  check.knownKeys('stompHeartbeat', beat, STOMP_HEARTBEAT_OPTIONS);
  for (const key of ['outgoingMs', 'incomingMs'] as const) {
    const value = beat?.[key];
    if (value !== undefined && value !== 0) check.duration(`stompHeartbeat.${key}`, value);
  }
  check.that(
    beat?.toleranceMultiplier === undefined || (typeof beat.toleranceMultiplier === 'number' && beat.toleranceMultiplier >= 1 && beat.toleranceMultiplier <= 100),
    'stompHeartbeat.toleranceMultiplier',
    beat?.toleranceMultiplier,
    'Use a number from 1 to 100: below 1 a session is dropped before its heart-beat is even due.',
  );

  check.knownKeys('probe', options.probe, STOMP_PROBE_OPTIONS);
  if (options.probe?.destination !== undefined) check.text('probe.destination', options.probe.destination);

  const subscriptions = options.subscriptions;
  check.that(subscriptions === undefined || Array.isArray(subscriptions), 'subscriptions', subscriptions, 'Pass an array of { destination, headers?, onMessage }.');
  subscriptions?.forEach((subscription, index) => {
    check.that(typeof subscription === 'object' && subscription !== null, `subscriptions[${index}]`, subscription, 'Pass { destination, headers?, onMessage }.');
    check.knownKeys(`subscriptions[${index}]`, subscription, STOMP_SUBSCRIPTION_OPTIONS);
    check.text(`subscriptions[${index}].destination`, subscription.destination);
    check.fn(`subscriptions[${index}].onMessage`, subscription.onMessage, true, '(message: StompMessage) => void | Promise<unknown>');
    checkHeaders(check, `subscriptions[${index}].headers`, subscription.headers);
  });

  check.oneOf('allowInsecureAuth', options.allowInsecureAuth, [true, false]);

  const endpoint = url === undefined ? endpointFromHost(check, options) : endpointFromUrl(check, options, url);
  warnOfCleartextCredentials(check, options, endpoint);
  return endpoint;
}

/**
 * A STOMP CONNECT frame carries its credentials as plain headers: without TLS, anyone on the path reads
 * them. Not refused (brokers on a private network often run without TLS), but said once, at bootstrap.
 */
function warnOfCleartextCredentials(check: OptionChecker, options: StompAdapterOptions, endpoint: StompEndpoint): void {
  const credentials = [
    ...(endpoint.login !== undefined ? ['login'] : []),
    ...(endpoint.passcode !== undefined ? ['passcode'] : []),
    ...Object.keys(options.connectHeaders ?? {}).filter((name) => name === 'login' || isSecretHeader(name)),
  ];
  const insecureAllowed = options.allowInsecureAuth ?? isLoopbackHost(endpoint.host);
  if (endpoint.tls || insecureAllowed || credentials.length === 0) return;
  check.warn(messages.stompCleartextCredentials([...new Set(credentials)], endpoint.target));
}

function endpointFromHost(check: OptionChecker, options: StompAdapterOptions): StompEndpoint {
  const { host } = options;
  check.text('host', host);
  check.that(
    options.transport !== 'websocket',
    'transport',
    options.transport,
    'STOMP over WebSocket needs the endpoint\'s path: give url, e.g. "ws://broker:15674/ws", instead of host and port.',
  );
  const secure = options.tls !== undefined && options.tls !== false;
  const port = options.port ?? (secure ? DEFAULT_TLS_PORT : DEFAULT_PORT);
  checkPort(check, port);
  const bareHost = unbracket(host as string);
  return {
    transport: 'tcp',
    host: bareHost,
    port,
    ...(secure ? { tls: tlsOptions(options.tls) } : {}),
    target: `${secure ? 'stomp+ssl' : 'stomp'}://${host}:${port}`,
    login: options.login,
    passcode: options.passcode,
  };
}

function endpointFromUrl(check: OptionChecker, options: StompAdapterOptions, url: string): StompEndpoint {
  // The value may hold a passcode: the message shows the scheme and host only, or nothing.
  const { parsed, shown } = parseUrlOption(check, 'url', url);
  check.that(parsed !== undefined && parsed.hostname !== '', 'url', shown, `Use a URL such as ${URL_FORMS}.`);
  const address = parsed as URL;
  const scheme = address.protocol;
  const websocket = scheme in WEBSOCKET_SCHEMES;
  check.that(scheme in TCP_SCHEMES || websocket, 'url', shown, `The scheme ${scheme} is not known; use ${URL_FORMS}.`);
  check.that(
    options.transport === undefined || options.transport === (websocket ? 'websocket' : 'tcp'),
    'transport',
    options.transport,
    `The url's scheme ${scheme} means ${websocket ? 'websocket' : 'tcp'}; leave transport out or make them agree.`,
  );
  check.that(options.port === undefined, 'port', options.port, 'Put the port in the url.');
  const secure = (websocket ? WEBSOCKET_SCHEMES[scheme] : TCP_SCHEMES[scheme]) || (options.tls !== undefined && options.tls !== false);
  check.that(!(websocket && secure && scheme === 'ws:'), 'tls', options.tls, 'Use a wss:// url for WebSocket over TLS.');
  const port = address.port ? Number(address.port) : websocket ? (secure ? 443 : 80) : secure ? DEFAULT_TLS_PORT : DEFAULT_PORT;
  const login = options.login ?? (address.username ? decodeURIComponent(address.username) : undefined);
  const passcode = options.passcode ?? (address.password ? decodeURIComponent(address.password) : undefined);
  const host = unbracket(address.hostname);
  const tls = secure ? tlsOptions(options.tls) : undefined;
  if (!websocket) {
    return { transport: 'tcp', host, port, ...(tls ? { tls } : {}), target: `${secure ? 'stomp+ssl' : 'stomp'}://${address.host}`, login, passcode };
  }
  const clean = new URL(address.href);
  clean.username = '';
  clean.password = '';
  clean.hash = '';
  const webSocketUrl = clean.href;
  clean.search = '';
  return { transport: 'websocket', host, port, ...(tls ? { tls } : {}), webSocketUrl, target: clean.href, login, passcode };
}

function checkHeaders(check: OptionChecker, option: string, headers: unknown): void {
  if (headers === undefined) return;
  check.that(
    typeof headers === 'object' && headers !== null && Object.values(headers).every((value) => typeof value === 'string'),
    option,
    headers,
    'Use an object whose values are strings.',
  );
}

function checkPort(check: OptionChecker, port: unknown): void {
  check.that(Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65_535, 'port', port, 'Use a whole number from 1 to 65535.');
}

function tlsOptions(given: StompAdapterOptions['tls']): tls.ConnectionOptions {
  return typeof given === 'object' ? given : {};
}

/** URL hosts keep IPv6 brackets; sockets want the bare address. */
function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
