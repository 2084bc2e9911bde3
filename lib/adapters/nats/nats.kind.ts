import type { ConnectionDefinitionBase } from '../../core/connection-definition.js';
import { messages } from '../../core/messages.js';
import type { MonitorOptions } from '../../core/monitor-options.js';
import { optionNames, type OptionChecker } from '../../core/option-checker.js';
import type { ConnectionKindSpec, ProviderToken } from '../connection-kind.js';
import { handedIn } from '../handed-in.js';
import { optionSecrets, urlSecrets } from '../known-secrets.js';
import { isLoopbackHost } from '../loopback-host.js';
import { KeptNatsSubscriptions, type NatsSubscriptionDefinition } from './kept-nats-subscriptions.js';
import { isNatsConnection, type NatsConnectionLike } from './nats-like.js';
import { libraryOf, NATS_2, NATS_3, NATS_FEATURE } from './nats-library.js';
import { NatsAdapter, type NatsSource } from './nats.adapter.js';

/** A NATS server (core NATS) through nats.js: the app's connection, watched, or one the package makes. */
export interface NatsConnectionDefinition extends ConnectionDefinitionBase {
  kind: 'nats';
  /**
   * The app's nats.js connection (`await connect(...)` of `nats` 2.x or of `@nats-io/transport-node` 3.x, as
   * Nest 12's ClientNats holds), or the token of its provider. It is watched, never closed by the package:
   * nats.js reconnects it. Give either connection, or servers and/or natsOptions.
   */
  connection?: NatsConnectionLike | ProviderToken;
  /**
   * The server(s) of a connection the package makes: `nats://host:4222`, `tls://host:4222` (TLS required) or
   * `host:4222`, one or a list (a cluster). A password in a URL is never shown.
   */
  servers?: string | string[];
  /**
   * nats.js options of that connection (user, pass, token, name, tls, authenticator, ...); it is made by `nats`
   * 2.x, or by `@nats-io/transport-node` 3.x when only that one is installed. Not reconnect,
   * maxReconnectAttempts or waitOnFirstConnect: the package makes a new connection after a loss, with its
   * backoff. `timeout` (the handshake's deadline) defaults to heartbeat.connectTimeoutMs.
   */
  natsOptions?: { readonly [option: string]: unknown };
  /** Subscriptions made on every new connection; one the server refused reads degraded. */
  subscriptions?: NatsSubscriptionDefinition[];
  /**
   * A password or token sent without TLS to a host that is not loopback is logged as a warning at bootstrap
   * (for a connection the package makes). `true` silences it (a trusted network); `false` warns for a loopback host too.
   */
  allowInsecureAuth?: boolean;
}

export const NATS_OPTIONS = optionNames<Omit<NatsConnectionDefinition, keyof ConnectionDefinitionBase | 'kind'>>({
  connection: true,
  servers: true,
  natsOptions: true,
  subscriptions: true,
  allowInsecureAuth: true,
});
export const NATS_SUBSCRIPTION_OPTIONS = optionNames<NatsSubscriptionDefinition>({ subject: true, queue: true, onMessage: true });
const SUBSCRIPTION_SHAPE = '{ subject, queue?, onMessage }';

/** Options of the package's own connection that the package sets itself. */
const OWNED_BY_PACKAGE = ['reconnect', 'maxReconnectAttempts', 'waitOnFirstConnect', 'servers'] as const;

/**
 * A NATS server. A decorated property or getter holds the app's nats.js connection; a method is called once
 * at bootstrap and returns it. Either way the connection is watched, never closed.
 */
export const natsKind: ConnectionKindSpec<NatsConnectionDefinition, Omit<NatsConnectionDefinition, 'connection' | 'servers' | 'natsOptions'>> = {
  kind: 'nats',
  options: NATS_OPTIONS,
  defaults: {},
  create(definition, options, { check, provider, report }) {
    checkSubscriptions(check, definition.subscriptions);
    const { source, target, secrets } = natsSource(definition, options, check, provider);
    const subscriptions = new KeptNatsSubscriptions(definition.subscriptions ?? [], definition.name, report);
    return new NatsAdapter(source, { target, subscriptions, secrets });
  },
  fromMember: (options, { value, method }) => ({ definition: { ...options, connection: (method ? method() : value) as NatsConnectionLike }, keepsClient: false }),
};

interface ResolvedSource {
  readonly source: NatsSource;
  readonly target: string;
  readonly secrets: readonly string[];
}

function natsSource(definition: NatsConnectionDefinition, options: MonitorOptions, check: OptionChecker, provider?: (token: ProviderToken) => unknown): ResolvedSource {
  const { connection, servers, natsOptions, allowInsecureAuth } = definition;
  check.oneOf('allowInsecureAuth', allowInsecureAuth, [true, false]);
  if (connection !== undefined) {
    check.that(
      servers === undefined && natsOptions === undefined,
      servers === undefined ? 'natsOptions' : 'servers',
      '(given beside connection)',
      "Give either connection (the app's nats.js connection, watched) or servers / natsOptions (the package makes its own), not both.",
    );
    const watched = resolveConnection(check, connection, provider);
    // The side connection that judges a late flow is made by the library that made the app's connection.
    check.needsPeer(libraryOf(watched), `the side connection judging the flow of a nats.js ${libraryOf(watched) === NATS_2 ? '2.x' : '3.x'} connection`);
    return { source: { watched }, target: watched.getServer(), secrets: optionSecrets((watched as { options?: unknown }).options) };
  }
  check.that(
    servers !== undefined || natsOptions !== undefined,
    'connection',
    undefined,
    "Give connection: the app's nats.js connection or its provider's token, or servers / natsOptions for a connection the package makes.",
  );
  const list = servers === undefined ? ['127.0.0.1:4222'] : Array.isArray(servers) ? servers : [servers];
  check.that(
    list.length > 0 && list.every((server) => typeof server === 'string' && /^(?:(?:nats|tls):\/\/)?[^\s/]+$/.test(server.replace(/\/$/, ''))),
    'servers',
    list.map((server) => (typeof server === 'string' ? withoutUserinfo(server) : '(not a string)')).join(', '),
    "Use 'nats://host:4222', 'tls://host:4222' (TLS) or 'host:4222', or a list of them: nats.js's connect() speaks TCP, not WebSocket.",
  );
  // nats.js 2.x ignores a URL's scheme: tls:// becomes the tls option, which it applies to every server.
  const tlsServers = list.filter((server) => /^tls:\/\//i.test(server)).length;
  check.that(
    tlsServers === 0 || tlsServers === list.length,
    'servers',
    list.map(withoutUserinfo).join(', '),
    'Use tls:// for every server or for none: nats.js takes one TLS setting for the whole list.',
  );
  const tlsOption = natsOptions?.tls as { handshakeFirst?: unknown } | null | false | undefined;
  check.that(
    tlsServers === 0 || tlsOption === undefined || Boolean(tlsOption),
    'natsOptions.tls',
    tlsOption,
    'Leave it out, or give TLS options: the servers are tls://, so the connection requires TLS.',
  );
  check.that(
    !tlsOption || tlsOption.handshakeFirst === undefined || tlsOption.handshakeFirst === false,
    'natsOptions.tls.handshakeFirst',
    tlsOption ? tlsOption.handshakeFirst : undefined,
    'Leave it out for a connection the package makes: nats.js keeps the socket of a TLS-first handshake it gave up on, ' +
      'which the package cannot destroy (one per attempt into a stalled server). Make the connection yourself and hand it in as connection.',
  );
  check.that(
    natsOptions === undefined || (typeof natsOptions === 'object' && natsOptions !== null && !Array.isArray(natsOptions)),
    'natsOptions',
    natsOptions,
    'Use an object of nats.js options (user, pass, token, name, tls, ...), or leave it out.',
  );
  for (const option of OWNED_BY_PACKAGE) {
    check.that(
      natsOptions?.[option] === undefined,
      `natsOptions.${option}`,
      option === 'servers' ? '(given)' : natsOptions?.[option],
      option === 'servers' ? 'Give the servers as the servers option.' : 'Leave it out: the package makes a new connection after a loss, with the reconnect options.',
    );
  }
  const fromUrls = [...new Set(list.map(urlCredentials).filter((found) => found !== undefined).map((found) => JSON.stringify(found)))];
  check.that(
    fromUrls.length <= 1,
    'servers',
    list.map(withoutUserinfo).join(', '),
    'The servers carry different credentials, but nats.js sends one user and password (or token) to every server. Give the same in each, or give them once as natsOptions.user / pass / token.',
  );
  const credentials = fromUrls[0] === undefined ? {} : (JSON.parse(fromUrls[0]) as Record<string, string>);
  // nats 2.x first, as the package always made its connections (its own measured behaviour); 3.x when only it is installed (a Nest 12 app).
  check.needsPeer(NATS_2, NATS_FEATURE, NATS_3);
  // A truthy tls option makes nats.js require TLS of the server (it fails rather than fall back to clear).
  const tls = tlsServers > 0 ? { tls: natsOptions?.tls ?? {} } : {};
  warnOfCleartextAuth(check, list, { ...natsOptions, ...tls }, allowInsecureAuth);
  return {
    // nats.js 2.x reads no credentials from a server's URL (it keeps host and port): the package passes them as options.
    source: { connectOptions: { timeout: options.heartbeat.connectTimeoutMs, name: definition.name, ...credentials, ...natsOptions, ...tls, servers: list.map(withoutUserinfo) } },
    target: shownServer(list[0] as string),
    secrets: [
      ...list.flatMap((server) => urlSecrets(server.includes('://') ? server : `nats://${server}`)),
      ...Object.entries(credentials).flatMap(([key, value]) => (key === 'user' ? [] : [value])),
      ...optionSecrets(natsOptions),
    ],
  };
}

/** A server as given, without its userinfo. */
function withoutUserinfo(server: string): string {
  return server.replace(/^((?:[a-z]+:\/\/)?)[^\s/]*@/i, '$1');
}

/**
 * The credentials in a server's userinfo, as the Go client and the NATS docs read them: `user:password@`, or
 * `token@`. Undefined when it has none.
 */
function urlCredentials(server: string): { user: string; pass: string } | { token: string } | undefined {
  const userinfo = /^(?:[a-z]+:\/\/)?([^\s/]*)@/i.exec(server)?.[1];
  if (!userinfo) return undefined;
  const colon = userinfo.indexOf(':');
  const decode = (text: string) => {
    try {
      return decodeURIComponent(text);
    } catch {
      return text;
    }
  };
  return colon < 0 ? { token: decode(userinfo) } : { user: decode(userinfo.slice(0, colon)), pass: decode(userinfo.slice(colon + 1)) };
}

/** `host:port` of a server, without credentials. */
function shownServer(server: unknown): string {
  if (typeof server !== 'string') return '(not a string)';
  try {
    const url = new URL(server.includes('://') ? server : `nats://${server}`);
    return `${url.hostname}:${url.port || 4222}`;
  } catch {
    return '(not a server address)';
  }
}

/** The app's connection itself, or the one its provider holds. */
function resolveConnection(check: OptionChecker, given: unknown, provider?: (token: ProviderToken) => unknown): NatsConnectionLike {
  const connection = handedIn(check, 'connection', given, isNatsConnection, provider, 'No provider with that token holds a connection. Register the nats.js connection as a provider, import its module, or pass the connection itself.');
  // Never the object itself in the message: a connection's options hold its credentials.
  check.that(
    isNatsConnection(connection),
    'connection',
    '(not a nats.js connection)',
    "Pass what nats.js's connect() resolves to (nats 2.x, or @nats-io/transport-node 3.x), or the token of its provider.",
  );
  return connection as NatsConnectionLike;
}

function checkSubscriptions(check: OptionChecker, subscriptions: unknown): void {
  check.that(subscriptions === undefined || Array.isArray(subscriptions), 'subscriptions', subscriptions, `Pass an array of ${SUBSCRIPTION_SHAPE}.`);
  (subscriptions as unknown[] | undefined)?.forEach((subscription, index) => {
    const at = `subscriptions[${index}]`;
    check.that(typeof subscription === 'object' && subscription !== null && !Array.isArray(subscription), at, subscription, `Pass ${SUBSCRIPTION_SHAPE}.`);
    const { subject, queue, onMessage } = subscription as NatsSubscriptionDefinition;
    check.knownKeys(at, subscription as object, NATS_SUBSCRIPTION_OPTIONS);
    check.text(`${at}.subject`, subject);
    check.that(
      typeof subject !== 'string' || /^[^\s]+$/.test(subject),
      `${at}.subject`,
      subject,
      "Use a subject without white space, such as 'orders.created', 'orders.*' or 'orders.>'.",
    );
    if (queue !== undefined) check.text(`${at}.queue`, queue);
    check.fn(`${at}.onMessage`, onMessage, true, '(message: NatsMessage) => unknown');
  });
}

/** CONNECT carries a password or token in clear without TLS: not refused (a private network), but said once. */
function warnOfCleartextAuth(check: OptionChecker, servers: readonly string[], natsOptions: Record<string, unknown>, allowInsecureAuth: boolean | undefined): void {
  if (allowInsecureAuth === true || natsOptions.tls) return;
  const credentials = natsOptions.pass !== undefined || natsOptions.token !== undefined;
  for (const server of servers) {
    const url = new URL(server.includes('://') ? server : `nats://${server}`);
    if (!credentials && url.password === '' && url.username === '') continue;
    if (allowInsecureAuth === undefined && isLoopbackHost(url.hostname)) continue;
    check.warn(messages.natsCleartextAuth(url.hostname));
    return;
  }
}
