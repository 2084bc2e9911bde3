import type { ConnectionDefinitionBase } from '../../core/connection-definition.js';
import { messages } from '../../core/messages.js';
import type { MonitorOptions } from '../../core/monitor-options.js';
import { optionNames, type OptionChecker } from '../../core/option-checker.js';
import type { ConnectionKindSpec, ProviderToken } from '../connection-kind.js';
import { handedIn } from '../handed-in.js';
import { isLoopbackHost } from '../loopback-host.js';
import { checkKeepAlive, type TcpKeepAliveOptions } from '../tcp-keepalive.js';
import { parseUrlOption } from '../url-option.js';
import { isRedisClient, type RedisLike } from './redis-like.js';
import { RedisAdapter, type RedisSource } from './redis.adapter.js';

/** A Redis server (standalone) through ioredis: the app's client, watched, or one the package creates. */
export interface RedisConnectionDefinition extends ConnectionDefinitionBase {
  kind: 'redis';
  /**
   * The app's ioredis client, or the token of its provider (e.g. `getRedisConnectionToken()`). It is
   * watched, never closed nor reopened by the package; its own retryStrategy reconnects it. Give either
   * client, or url and/or redisOptions.
   */
  client?: RedisLike | ProviderToken;
  /**
   * `redis://` or `rediss://` (TLS) URL of a client the package creates, e.g. `redis://:secret@cache:6379/0`.
   * Its password is never shown.
   */
  url?: string;
  /**
   * ioredis options of the client the package creates (host, port, password, db, tls, ...), on top of the
   * url's. Not retryStrategy or lazyConnect: the package connects it, and reconnects it with its backoff.
   */
  redisOptions?: { readonly [option: string]: unknown };
  /**
   * A password sent without TLS to a host that is not loopback is logged as a warning at bootstrap (for a
   * client the package creates). `true` silences it (a trusted network); `false` warns for a loopback host too.
   */
  allowInsecureAuth?: boolean;
  /**
   * Kernel keepalive of the connection's socket, set on every new one. It proves a connection blocked in
   * BLPOP & co., where a PING would wait. Default: idle max(1 000, intervalMs + timeoutMs - 10 000) ms; an
   * app's client whose own ioredis `keepAlive` is above 0 keeps that one.
   */
  keepAlive?: TcpKeepAliveOptions;
}

export const REDIS_OPTIONS = optionNames<Omit<RedisConnectionDefinition, keyof ConnectionDefinitionBase | 'kind'>>({
  client: true,
  url: true,
  redisOptions: true,
  allowInsecureAuth: true,
  keepAlive: true,
});

/** Options of the package's own client that the package sets itself. */
const OWNED_BY_PACKAGE = ['retryStrategy', 'lazyConnect'] as const;

/**
 * A Redis server. A decorated property or getter holds the app's ioredis client; a method is called once
 * at bootstrap and returns it. Either way the client is watched, never closed.
 */
export const redisKind: ConnectionKindSpec<RedisConnectionDefinition, Omit<RedisConnectionDefinition, 'client' | 'url' | 'redisOptions'>> = {
  kind: 'redis',
  options: REDIS_OPTIONS,
  defaults: {},
  create(definition, options, { check, provider }) {
    checkKeepAlive(check, definition.keepAlive);
    const source = redisSource(definition, check, provider);
    // An app's client that chose its own keepalive keeps it, unless the connection asks for ours.
    const ownKeepAlive = 'watched' in source ? (source.watched.options as { keepAlive?: unknown }).keepAlive : undefined;
    const keepsItsOwn = definition.keepAlive === undefined && typeof ownKeepAlive === 'number' && ownKeepAlive > 0;
    return new RedisAdapter(source, keepsItsOwn ? undefined : { ...defaultKeepAlive(options), ...definition.keepAlive });
  },
  fromMember: (options, { value, method }) => ({ definition: { ...options, client: (method ? method() : value) as RedisLike }, keepsClient: false }),
};

/**
 * The redis kind on a client whose socket ends more than itself: a Nest ClientRedis' pub or sub client, where
 * the end of one ends the pair. Beats, judging and losses as for an app's client, but a socket (a dead flow, a
 * hung handshake) is ended by `endSocket`, which may refuse, and no kernel keepalive is set (the kernel would
 * end it regardless of what that end rejects).
 */
export function redisAdapterOnSharedSocket(client: RedisLike, endSocket: (client: RedisLike) => boolean): RedisAdapter {
  return new RedisAdapter({ watched: client }, undefined, endSocket);
}

/**
 * Keepalive probes start after this much silence and 10 unanswered ones, 1 s apart (Node's), drop the
 * connection: a dead flow under a blocking command is noticed within intervalMs + timeoutMs, as by a beat.
 */
function defaultKeepAlive({ heartbeat }: MonitorOptions): TcpKeepAliveOptions {
  return { idleMs: Math.max(1_000, heartbeat.intervalMs + heartbeat.timeoutMs - 10_000) };
}

/** The app's client to watch, or the options of the package's own, checked. */
function redisSource(definition: RedisConnectionDefinition, check: OptionChecker, provider?: (token: ProviderToken) => unknown): RedisSource {
  const { client, url, redisOptions, allowInsecureAuth } = definition;
  check.oneOf('allowInsecureAuth', allowInsecureAuth, [true, false]);
  if (client !== undefined) {
    check.that(
      url === undefined && redisOptions === undefined,
      url === undefined ? 'redisOptions' : 'url',
      '(given beside client)',
      "Give either client (the app's ioredis client, watched) or url / redisOptions (the package creates its own client), not both.",
    );
    return { watched: resolveClient(check, client, provider) };
  }
  check.that(
    url !== undefined || redisOptions !== undefined,
    'client',
    undefined,
    "Give client: the app's ioredis client or its provider's token, or url / redisOptions for a client the package creates.",
  );
  const address = url === undefined ? undefined : checkUrl(check, url);
  check.that(
    redisOptions === undefined || (typeof redisOptions === 'object' && redisOptions !== null && !Array.isArray(redisOptions)),
    'redisOptions',
    redisOptions,
    'Use an object of ioredis options (host, port, password, db, tls, ...), or leave it out.',
  );
  for (const option of OWNED_BY_PACKAGE) {
    check.that(
      redisOptions?.[option] === undefined,
      `redisOptions.${option}`,
      typeof redisOptions?.[option] === 'function' ? '(a function)' : redisOptions?.[option],
      'Leave it out: the package connects the client, and reconnects it with the reconnect options.',
    );
  }
  check.needsPeer('ioredis', 'Redis connections');
  const own = { url, redisOptions: { ...redisOptions } };
  warnOfCleartextPassword(check, own, address, allowInsecureAuth);
  return own;
}

/** The app's client itself, or the one its provider holds. */
function resolveClient(check: OptionChecker, given: unknown, provider?: (token: ProviderToken) => unknown): RedisLike {
  const client = handedIn(check, 'client', given, isRedisClient, provider, 'No provider with that token holds a client. Register the ioredis client as a provider, import its module, or pass the client itself.');
  check.that(
    !(client as { isCluster?: unknown } | null)?.isCluster,
    'client',
    '(an ioredis Cluster)',
    'Redis Cluster is not supported: monitor a standalone server (or one behind Sentinel) through its ioredis Redis client.',
  );
  const { options, status } = (client ?? {}) as { options?: { monitor?: unknown }; status?: unknown };
  check.that(options?.monitor !== true && status !== 'monitoring', 'client', '(a client in MONITOR mode)', messages.redisMonitorClient());
  // Never the object itself in the message: a client's options hold its password.
  check.that(isRedisClient(client), 'client', '(not an ioredis client)', 'Pass an ioredis Redis client (new Redis(...)), or the token of its provider.');
  return client as RedisLike;
}

/** Where a url points, checked; its password is never shown. */
function checkUrl(check: OptionChecker, url: string): URL {
  const { parsed, shown } = parseUrlOption(check, 'url', url);
  check.that(
    parsed !== undefined && /^rediss?:$/.test(parsed.protocol),
    'url',
    shown,
    "Use a redis:// or rediss:// (TLS) URL, e.g. 'redis://:password@cache:6379/0'.",
  );
  return parsed as URL;
}

/** AUTH goes in clear without TLS: not refused (Redis on a private network often runs without TLS), but said once. */
function warnOfCleartextPassword(
  check: OptionChecker,
  { redisOptions }: { redisOptions: Record<string, unknown> },
  address: URL | undefined,
  allowInsecureAuth: boolean | undefined,
): void {
  if (allowInsecureAuth === true) return;
  const password =
    redisOptions.password !== undefined || (address !== undefined && (address.password !== '' || address.searchParams.has('password')));
  const tls = redisOptions.tls !== undefined || address?.protocol === 'rediss:';
  const host = String(redisOptions.host ?? address?.hostname ?? 'localhost');
  if (!password || tls || redisOptions.path !== undefined) return;
  if (allowInsecureAuth === undefined && isLoopbackHost(host)) return;
  check.warn(messages.redisCleartextPassword(host));
}
