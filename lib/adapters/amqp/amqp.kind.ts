import type { ConnectionDefinitionBase } from '../../core/connection-definition.js';
import { messages } from '../../core/messages.js';
import type { MonitorOptions } from '../../core/monitor-options.js';
import { optionNames, type OptionChecker } from '../../core/option-checker.js';
import type { ConnectionKindSpec, ProviderToken } from '../connection-kind.js';
import { handedIn } from '../handed-in.js';
import { optionSecrets, urlSecrets } from '../known-secrets.js';
import { isLoopbackHost } from '../loopback-host.js';
import { parseUrlOption } from '../url-option.js';
import { amqpShape, type AmqpChannelModelLike, type AmqpConnectionLike, type AmqpConnectionManagerLike, type AmqpRawConnectionLike, type AmqpRecoveringModelLike } from './amqp-like.js';
import { OwnedAmqpConnection, WatchedAmqpManager, WatchedAmqpModel, WatchedRecoveringModel, type AmqpSource } from './amqp-source.js';
import { AmqpAdapter } from './amqp.adapter.js';
import type { AmqpConsumerDefinition } from './kept-amqp-consumer.js';

/** An AMQP 0-9-1 broker (RabbitMQ) through amqplib: the app's connection, watched, or one the package opens. */
export interface AmqpConnectionDefinition extends ConnectionDefinitionBase {
  kind: 'amqp';
  /**
   * The app's connection, or the token of its provider: an amqplib ChannelModel (`await amqp.connect(url)`),
   * an amqp-connection-manager, or amqplib's recovering model (`amqp.connect(url, { recovery: true })`). It is
   * watched, never closed nor reconnected by the package; a ChannelModel that closed stays down. Give either
   * connection, or url.
   */
  connection?: AmqpConnectionLike | ProviderToken;
  /**
   * `amqp://` or `amqps://` (TLS) URL of a connection the package opens, e.g. `amqp://user:secret@broker:5672/vhost`.
   * Its password is never shown. `?heartbeat=` in it wins over the package's period.
   */
  url?: string;
  /** amqplib's socket options of that connection (TLS ca, cert, key, passphrase, servername; credentials, ...). */
  socketOptions?: { readonly [option: string]: unknown };
  /** Consumers made on every new connection, each on its own channel; one the broker cancelled reads degraded. */
  consumers?: AmqpConsumerDefinition[];
  /**
   * What a beat sends besides AMQP's heartbeat frames, on a channel and a server-named exclusive queue of the
   * package's own: 'publish', a message published with a publisher confirm and consumed back (the broker
   * accepted, routed and delivered it); 'declare', a passive declare of that queue (the broker's connection
   * and channel answer). Default: 'publish' on a connection the package opens without `consumers`, else
   * 'declare': during a memory or disk alarm RabbitMQ stops reading every connection that publishes, and a
   * publish of the package's would stall the acknowledgements of the consumers sharing its connection,
   * just when they must drain the queues. A user refused that queue (403: no configure permission on
   * amq.gen-*) is asked once per connection; beats then declare `amq.direct` passively, whatever this says.
   */
  probe?: 'publish' | 'declare';
  /**
   * A password sent without TLS to a host that is not loopback is logged as a warning at bootstrap (for a
   * connection the package opens). `true` silences it (a trusted network); `false` warns for a loopback host too.
   */
  allowInsecureAuth?: boolean;
}

export const AMQP_OPTIONS = optionNames<Omit<AmqpConnectionDefinition, keyof ConnectionDefinitionBase | 'kind'>>({
  connection: true,
  url: true,
  socketOptions: true,
  consumers: true,
  probe: true,
  allowInsecureAuth: true,
});
export const AMQP_CONSUMER_OPTIONS = optionNames<AmqpConsumerDefinition>({ queue: true, assert: true, prefetch: true, noAck: true, onMessage: true, requeueFailed: true });
const CONSUMER_SHAPE = '{ queue, assert?, prefetch?, noAck?, requeueFailed?, onMessage }';

/**
 * An AMQP broker. A decorated property or getter holds the app's connection; a method is called once at
 * bootstrap and returns it. Either way the connection is watched, never closed.
 */
export const amqpKind: ConnectionKindSpec<AmqpConnectionDefinition, Omit<AmqpConnectionDefinition, 'connection' | 'url' | 'socketOptions'>> = {
  kind: 'amqp',
  options: AMQP_OPTIONS,
  defaults: {},
  create(definition, options, { check, provider, report }) {
    checkConsumers(check, definition.consumers);
    check.oneOf('probe', definition.probe, ['publish', 'declare']);
    const { source, target, secrets } = amqpSource(definition, options, check, provider);
    const consumers = definition.consumers ?? [];
    const probe = definition.probe ?? (source instanceof OwnedAmqpConnection && consumers.length === 0 ? 'publish' : 'declare');
    return new AmqpAdapter(source, { target, consumers, probe, connectionName: definition.name, report, secrets });
  },
  fromMember: (options, { value, method }) => ({ definition: { ...options, connection: (method ? method() : value) as AmqpConnectionLike }, keepsClient: false }),
};

/**
 * The period of the heartbeat frames the package's own connection asks for, in seconds: amqplib closes a
 * connection silent for two to three periods, and so does the broker, so neither keeps a dead flow for long.
 */
export function amqpHeartbeatSeconds({ heartbeat }: MonitorOptions): number {
  return Math.max(AMQP_MIN_HEARTBEAT_SECONDS, Math.floor((heartbeat.intervalMs + heartbeat.timeoutMs) / 3_000));
}

/**
 * Shorter, and an event loop stalled for a few seconds (a long synchronous task, a GC pause) would have the
 * broker drop the connection and deliver its unacknowledged messages again. The beat reads a dead flow down
 * within its bound anyway, and a new connection replaces it as soon as the broker answers one.
 */
const AMQP_MIN_HEARTBEAT_SECONDS = 10;

interface ResolvedSource {
  readonly source: AmqpSource;
  readonly target?: string;
  readonly secrets: readonly string[];
}

function amqpSource(definition: AmqpConnectionDefinition, options: MonitorOptions, check: OptionChecker, provider?: (token: ProviderToken) => unknown): ResolvedSource {
  const { connection, url, socketOptions, allowInsecureAuth } = definition;
  check.oneOf('allowInsecureAuth', allowInsecureAuth, [true, false]);
  if (connection !== undefined) {
    check.that(
      url === undefined && socketOptions === undefined,
      url === undefined ? 'socketOptions' : 'url',
      '(given beside connection)',
      "Give either connection (the app's, watched) or url / socketOptions (the package opens its own), not both.",
    );
    return watchedSource(check, connection, provider);
  }
  check.that(
    url !== undefined,
    'url',
    undefined,
    "Give url for a connection the package opens (amqp://user:password@host:5672/vhost), or connection: the app's amqplib connection, amqp-connection-manager or its provider's token.",
  );
  const address = checkUrl(check, url as string);
  check.that(
    socketOptions === undefined || (typeof socketOptions === 'object' && socketOptions !== null && !Array.isArray(socketOptions)),
    'socketOptions',
    socketOptions,
    "Use an object of amqplib's socket options (ca, cert, key, servername, ...), or leave it out.",
  );
  check.needsPeer('amqplib', 'AMQP connections');
  warnOfCleartextPassword(check, address, allowInsecureAuth);
  // The broker's heartbeat frames at the package's period, unless the url asks for another.
  if (!address.searchParams.has('heartbeat')) address.searchParams.set('heartbeat', String(amqpHeartbeatSeconds(options)));
  const secure = address.protocol === 'amqps:';
  return {
    source: new OwnedAmqpConnection(address.toString(), { timeout: options.heartbeat.connectTimeoutMs, ...socketOptions }),
    target: `${address.hostname}:${address.port || (secure ? 5671 : 5672)}`,
    secrets: [...urlSecrets(url), ...optionSecrets(socketOptions)],
  };
}

/** The app's connection itself, or the one its provider holds, watched in the way its library allows. */
function watchedSource(check: OptionChecker, given: unknown, provider?: (token: ProviderToken) => unknown): ResolvedSource {
  const connection = handedIn(check, 'connection', given, (value) => amqpShape(value) !== undefined, provider, 'No provider with that token holds a connection. Register the connection as a provider, import its module, or pass the connection itself.');
  const shape = amqpShape(connection);
  // Never the object itself in the message: a connection's options hold its password.
  check.that(
    shape !== undefined,
    'connection',
    '(not an amqplib connection)',
    'Pass what amqplib\'s promise API gives (await amqp.connect(url), with or without { recovery }), an amqp-connection-manager (amqp.connect([url])), or the token of its provider.',
  );
  switch (shape) {
    case 'manager': {
      const manager = connection as AmqpConnectionManagerLike;
      return { source: new WatchedAmqpManager(manager), target: socketTarget(manager.connection?.connection), secrets: [] };
    }
    case 'recovering':
      return { source: new WatchedRecoveringModel(connection as AmqpRecoveringModelLike), secrets: [] };
    default: {
      const model = connection as AmqpChannelModelLike;
      return { source: new WatchedAmqpModel(model), target: socketTarget(model.connection), secrets: [] };
    }
  }
}

function checkConsumers(check: OptionChecker, consumers: unknown): void {
  check.that(consumers === undefined || Array.isArray(consumers), 'consumers', consumers, `Pass an array of ${CONSUMER_SHAPE}.`);
  (consumers as unknown[] | undefined)?.forEach((consumer, index) => {
    const at = `consumers[${index}]`;
    check.that(typeof consumer === 'object' && consumer !== null && !Array.isArray(consumer), at, consumer, `Pass ${CONSUMER_SHAPE}.`);
    const { queue, assert, prefetch, noAck, requeueFailed, onMessage } = consumer as AmqpConsumerDefinition;
    check.knownKeys(at, consumer as object, AMQP_CONSUMER_OPTIONS);
    check.text(`${at}.queue`, queue);
    check.fn(`${at}.onMessage`, onMessage, true, '(message: AmqpMessage) => unknown');
    check.that(
      assert === undefined || (typeof assert === 'object' && assert !== null && !Array.isArray(assert)),
      `${at}.assert`,
      assert,
      'Use an object of assertQueue options ({ durable: true, ... }), or leave it out to consume a queue that exists.',
    );
    if (prefetch !== undefined) check.count(`${at}.prefetch`, prefetch, 'or leave it out (10)');
    check.oneOf(`${at}.noAck`, noAck, [true, false]);
    check.oneOf(`${at}.requeueFailed`, requeueFailed, ['once', 'always']);
  });
}

/** Where a url points, checked; its password is never shown. */
function checkUrl(check: OptionChecker, url: string): URL {
  const { parsed, shown } = parseUrlOption(check, 'url', url);
  check.that(
    parsed !== undefined && /^amqps?:$/.test(parsed.protocol) && parsed.hostname !== '',
    'url',
    shown,
    "Use an amqp:// or amqps:// (TLS) URL, e.g. 'amqp://user:password@broker:5672/vhost'.",
  );
  return parsed as URL;
}

/** PLAIN sends the password in clear without TLS: not refused (a broker on a private network often runs without TLS), but said once. */
function warnOfCleartextPassword(check: OptionChecker, address: URL, allowInsecureAuth: boolean | undefined): void {
  if (allowInsecureAuth === true || address.password === '' || address.protocol === 'amqps:') return;
  if (allowInsecureAuth === undefined && isLoopbackHost(address.hostname)) return;
  check.warn(messages.amqpCleartextPassword(address.hostname));
}

/** `host:port` of the broker a connection is connected to, when it is. */
function socketTarget(connection: AmqpRawConnectionLike | undefined): string | undefined {
  const socket = connection?.stream as { remoteAddress?: string; remotePort?: number } | undefined;
  return socket?.remoteAddress === undefined ? undefined : `${socket.remoteAddress}:${socket.remotePort}`;
}
