/**
 * Start servers once per test run instead of once per test file.
 *
 * The runner (test/run.ts) calls startSharedServers() and passes `env` to its `node --test` child
 * processes; inside them sharedPostgres() attaches to that server. Run a test file alone and
 * sharedPostgres() starts a private server instead, removed when the process exits.
 *
 * A test may kill() or restart() the shared server, since the handle finds the postmaster through
 * its data folder, but must startAgain() it before it ends (an after() hook); sharedPostgres()
 * also starts it again if it finds it down. Such tests must not run beside other files using the
 * same server: run them with --test-concurrency=1 or give them a server of their own.
 */
import { ActiveMqServer } from './activemq.server.js';
import { DovecotServer } from './dovecot.server.js';
import { MosquittoServer } from './mosquitto.server.js';
import { NatsServer } from './nats.server.js';
import { PostgresServer } from './postgres.server.js';
import { RabbitMqServer } from './rabbitmq.server.js';
import { RedisServer } from './redis.server.js';

/** The names of the environment variables that describe the shared PostgreSQL. */
export const POSTGRES_ENV = {
  host: 'CH_PG_HOST',
  port: 'CH_PG_PORT',
  /** The server's temporary folder (cluster, socket, log); the postmaster pid is read from it, never passed. */
  dir: 'CH_PG_DIR',
} as const;

/** The names of the environment variables that describe the shared dovecot (IMAP). */
export const IMAP_ENV = {
  host: 'CH_IMAP_HOST',
  port: 'CH_IMAP_PORT',
  /** The server's temporary folder (configuration, mail, rawlog); the master pid is read from it. */
  dir: 'CH_IMAP_DIR',
} as const;

/** The names of the environment variables that describe the shared dovecot with TLS (STARTTLS and IMAPS). */
export const IMAP_TLS_ENV = {
  host: 'CH_IMAP_TLS_HOST',
  port: 'CH_IMAP_TLS_PORT',
  tlsPort: 'CH_IMAP_TLS_TLSPORT',
  dir: 'CH_IMAP_TLS_DIR',
} as const;

/** The names of the environment variables that describe the shared STOMP brokers. */
export const ACTIVEMQ_ENV = {
  host: 'CH_ACTIVEMQ_HOST',
  port: 'CH_ACTIVEMQ_PORT',
  /** The broker's temporary folder (conf, data, log, pid file). */
  dir: 'CH_ACTIVEMQ_DIR',
} as const;

export const RABBITMQ_ENV = {
  host: 'CH_RABBITMQ_HOST',
  port: 'CH_RABBITMQ_PORT',
  webStompPort: 'CH_RABBITMQ_WS_PORT',
  /** The broker's temporary folder; its location.json holds the node name and the Erlang ports. */
  dir: 'CH_RABBITMQ_DIR',
} as const;

/** The names of the environment variables that describe the shared redis-server (no password). */
export const REDIS_ENV = {
  host: 'CH_REDIS_HOST',
  port: 'CH_REDIS_PORT',
  /** The server's temporary folder (redis.conf, redis.pid, log); the pid is read from it. */
  dir: 'CH_REDIS_DIR',
} as const;

/** The names of the environment variables that describe the shared nats-server (no auth). */
export const NATS_ENV = {
  host: 'CH_NATS_HOST',
  port: 'CH_NATS_PORT',
  /** The HTTP monitoring port (/connz, /healthz). */
  httpPort: 'CH_NATS_HTTP_PORT',
  /** The server's temporary folder (nats.conf, nats.pid, log); the pid is read from it. */
  dir: 'CH_NATS_DIR',
} as const;

/** The names of the environment variables that describe the shared mosquitto (anonymous, no persistence). */
export const MOSQUITTO_ENV = {
  host: 'CH_MOSQUITTO_HOST',
  port: 'CH_MOSQUITTO_PORT',
  /** The broker's temporary folder (mosquitto.conf, mosquitto.pid, log); the pid is read from it. */
  dir: 'CH_MOSQUITTO_DIR',
} as const;

export interface SharedServers {
  /** Variables to add to the environment of the test processes. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startSharedServers(): Promise<SharedServers> {
  // RabbitMQ takes 7-60 s to boot: the brokers start first, beside the others. Should another server fail
  // meanwhile, exit-cleanup removes them with the process.
  const brokers = startBrokers();
  brokers.catch(() => undefined); // awaited below
  const started: Array<{ stop(): Promise<void> }> = [];
  const stopStarted = () => Promise.all(started.map((server) => server.stop()));
  /** Starts one more server; when one fails, those started before it are stopped. */
  async function next<S extends { stop(): Promise<void> }>(starting: Promise<S>): Promise<S> {
    const server = await starting.catch(async (error: unknown) => {
      await stopStarted();
      throw error;
    });
    started.push(server);
    return server;
  }
  const postgres = await next(PostgresServer.start());
  const dovecot = await next(DovecotServer.start());
  const tlsDovecot = await next(startTlsDovecot());
  const redis = await next(RedisServer.start());
  const nats = await next(NatsServer.start());
  const mosquitto = await next(MosquittoServer.start());
  const { activemq, rabbitmq } = await brokers.catch(async (error: unknown) => {
    await stopStarted();
    throw error;
  });
  started.push(activemq, rabbitmq);
  return {
    env: {
      [POSTGRES_ENV.host]: postgres.host,
      [POSTGRES_ENV.port]: String(postgres.port),
      [POSTGRES_ENV.dir]: postgres.dir,
      [IMAP_ENV.host]: dovecot.host,
      [IMAP_ENV.port]: String(dovecot.port),
      [IMAP_ENV.dir]: dovecot.dir,
      [IMAP_TLS_ENV.host]: tlsDovecot.host,
      [IMAP_TLS_ENV.port]: String(tlsDovecot.port),
      [IMAP_TLS_ENV.tlsPort]: String(tlsDovecot.tlsPort),
      [IMAP_TLS_ENV.dir]: tlsDovecot.dir,
      [ACTIVEMQ_ENV.host]: activemq.host,
      [ACTIVEMQ_ENV.port]: String(activemq.port),
      [ACTIVEMQ_ENV.dir]: activemq.dir,
      [RABBITMQ_ENV.host]: rabbitmq.host,
      [RABBITMQ_ENV.port]: String(rabbitmq.port),
      [RABBITMQ_ENV.webStompPort]: String(rabbitmq.webStompPort),
      [RABBITMQ_ENV.dir]: rabbitmq.dir,
      [REDIS_ENV.host]: redis.host,
      [REDIS_ENV.port]: String(redis.port),
      [REDIS_ENV.dir]: redis.dir,
      [NATS_ENV.host]: nats.host,
      [NATS_ENV.port]: String(nats.port),
      [NATS_ENV.httpPort]: String(nats.httpPort),
      [NATS_ENV.dir]: nats.dir,
      [MOSQUITTO_ENV.host]: mosquitto.host,
      [MOSQUITTO_ENV.port]: String(mosquitto.port),
      [MOSQUITTO_ENV.dir]: mosquitto.dir,
    },
    stop: async () => {
      await stopStarted();
    },
  };
}

let shared: Promise<PostgresServer> | undefined;

/**
 * The run's PostgreSQL, or a private one for this process. Never stop() it in a test: an attached
 * handle ignores stop(), and a private one is removed at exit.
 */
export function sharedPostgres(): Promise<PostgresServer> {
  shared ??= (async () => {
    const server = postgresFromEnv();
    if (!server) return PostgresServer.start();
    // A file that killed the server and failed before starting it again must not fail every file after it.
    if (!server.isRunning()) await server.startAgain();
    return server;
  })();
  return shared;
}

/** A handle on the shared server that `env` describes, or undefined when no runner started one. */
export function postgresFromEnv(env: NodeJS.ProcessEnv = process.env): PostgresServer | undefined {
  const { [POSTGRES_ENV.host]: host, [POSTGRES_ENV.port]: port, [POSTGRES_ENV.dir]: dir } = env;
  return host && port && dir ? PostgresServer.attach({ host, port: Number(port), dir }) : undefined;
}

let sharedImap: Promise<DovecotServer> | undefined;

/**
 * The run's dovecot, or a private one for this process (removed at exit). A test may kick, kill and
 * killServer() it, but must startAgain() it before it ends; this also starts it again if it finds it down.
 */
export function sharedDovecot(): Promise<DovecotServer> {
  sharedImap ??= (async () => {
    const server = dovecotFromEnv();
    if (!server) return DovecotServer.start();
    if (!server.isRunning()) await server.startAgain();
    return server;
  })();
  return sharedImap;
}

/** A handle on the shared dovecot that `env` describes, or undefined when no runner started one. */
export function dovecotFromEnv(env: NodeJS.ProcessEnv = process.env): DovecotServer | undefined {
  const { [IMAP_ENV.host]: host, [IMAP_ENV.port]: port, [IMAP_ENV.dir]: dir } = env;
  return host && port && dir ? DovecotServer.attach({ host, port: Number(port), dir }) : undefined;
}

let sharedTlsImap: Promise<DovecotServer> | undefined;

/**
 * The run's dovecot with TLS (STARTTLS on `port`, IMAPS on `tlsPort`, `certificate` as CA), or a private
 * one for this process; same rules as sharedDovecot().
 */
export function sharedTlsDovecot(): Promise<DovecotServer> {
  sharedTlsImap ??= (async () => {
    const { [IMAP_TLS_ENV.host]: host, [IMAP_TLS_ENV.port]: port, [IMAP_TLS_ENV.tlsPort]: tlsPort, [IMAP_TLS_ENV.dir]: dir } = process.env;
    if (!host || !port || !tlsPort || !dir) return startTlsDovecot();
    const server = DovecotServer.attach({ host, port: Number(port), tlsPort: Number(tlsPort), dir });
    if (!server.isRunning()) await server.startAgain();
    return server;
  })();
  return sharedTlsImap;
}

/**
 * On a loopback address of its own (127.x.y.z: the whole /8 is local on Linux), so that as root it can take
 * the real IMAPS port 993, and a client left to the defaults (no port, no secure) reaches it, without
 * colliding with another run's server. The certificate names that address.
 */
function startTlsDovecot(): Promise<DovecotServer> {
  const byte = () => 1 + Math.floor(Math.random() * 254);
  const host = `127.${byte()}.${byte()}.${byte()}`;
  return DovecotServer.start({ tls: true, host, ...(process.getuid?.() === 0 ? { tlsPort: 993 } : {}) });
}

/** Starts ActiveMQ and RabbitMQ in parallel; when one fails, the other is stopped. */
async function startBrokers(): Promise<{ activemq: ActiveMqServer; rabbitmq: RabbitMqServer }> {
  const [activemq, rabbitmq] = await Promise.allSettled([ActiveMqServer.start(), RabbitMqServer.start()]);
  if (activemq.status === 'fulfilled' && rabbitmq.status === 'fulfilled') return { activemq: activemq.value, rabbitmq: rabbitmq.value };
  await Promise.all([activemq, rabbitmq].map((result) => (result.status === 'fulfilled' ? result.value.stop() : undefined)));
  throw activemq.status === 'rejected' ? activemq.reason : (rabbitmq as PromiseRejectedResult).reason;
}

let sharedActiveMqServer: Promise<ActiveMqServer> | undefined;
let sharedRabbitMqServer: Promise<RabbitMqServer> | undefined;

/**
 * The run's ActiveMQ, or a private one for this process (removed at exit). A test may kill() it but must
 * startAgain() it before it ends; this also starts it again if it finds it down.
 */
export function sharedActiveMq(): Promise<ActiveMqServer> {
  sharedActiveMqServer ??= (async () => {
    const { [ACTIVEMQ_ENV.host]: host, [ACTIVEMQ_ENV.port]: port, [ACTIVEMQ_ENV.dir]: dir } = process.env;
    if (!host || !port || !dir) return ActiveMqServer.start();
    const server = ActiveMqServer.attach({ host, port: Number(port), dir });
    if (!server.isRunning()) await server.startAgain();
    return server;
  })();
  return sharedActiveMqServer;
}

/** The run's RabbitMQ (STOMP and Web-STOMP), or a private one for this process; same rules as sharedActiveMq(). */
export function sharedRabbitMq(): Promise<RabbitMqServer> {
  sharedRabbitMqServer ??= (async () => {
    const dir = process.env[RABBITMQ_ENV.dir];
    if (!dir) return RabbitMqServer.start();
    const server = await RabbitMqServer.attach({ dir });
    if (!server.isRunning()) await server.startAgain();
    return server;
  })();
  return sharedRabbitMqServer;
}

let sharedRedisServer: Promise<RedisServer> | undefined;

/**
 * The run's redis-server, or a private one for this process (removed at exit). A test may clientKill(),
 * kill() and restart() it, but must startAgain() it before it ends; this also starts it again if it finds it down.
 */
export function sharedRedis(): Promise<RedisServer> {
  sharedRedisServer ??= (async () => {
    const server = redisFromEnv();
    if (!server) return RedisServer.start();
    if (!server.isRunning()) await server.startAgain();
    return server;
  })();
  return sharedRedisServer;
}

/** A handle on the shared redis-server that `env` describes, or undefined when no runner started one. */
export function redisFromEnv(env: NodeJS.ProcessEnv = process.env): RedisServer | undefined {
  const { [REDIS_ENV.host]: host, [REDIS_ENV.port]: port, [REDIS_ENV.dir]: dir } = env;
  return host && port && dir ? RedisServer.attach({ host, port: Number(port), dir }) : undefined;
}

let sharedNatsServer: Promise<NatsServer> | undefined;

/**
 * The run's nats-server (no auth), or a private one for this process (removed at exit). A test may kick(),
 * kill(), lameDuck() and restart() it, but must startAgain() it before it ends; this also starts it again if
 * it finds it down.
 */
export function sharedNats(): Promise<NatsServer> {
  sharedNatsServer ??= (async () => {
    const server = natsFromEnv();
    if (!server) return NatsServer.start();
    if (!server.isRunning()) await server.startAgain();
    return server;
  })();
  return sharedNatsServer;
}

/** A handle on the shared nats-server that `env` describes, or undefined when no runner started one. */
export function natsFromEnv(env: NodeJS.ProcessEnv = process.env): NatsServer | undefined {
  const { [NATS_ENV.host]: host, [NATS_ENV.port]: port, [NATS_ENV.httpPort]: httpPort, [NATS_ENV.dir]: dir } = env;
  return host && port && httpPort && dir ? NatsServer.attach({ host, port: Number(port), httpPort: Number(httpPort), dir }) : undefined;
}

let sharedMosquittoServer: Promise<MosquittoServer> | undefined;

/**
 * The run's mosquitto, or a private one for this process (removed at exit). A test may kick(), kill() and
 * restart() it, but must startAgain() it before it ends; this also starts it again if it finds it down.
 */
export function sharedMosquitto(): Promise<MosquittoServer> {
  sharedMosquittoServer ??= (async () => {
    const server = mosquittoFromEnv();
    if (!server) return MosquittoServer.start();
    if (!server.isRunning()) await server.startAgain();
    return server;
  })();
  return sharedMosquittoServer;
}

/** A handle on the shared mosquitto that `env` describes, or undefined when no runner started one. */
export function mosquittoFromEnv(env: NodeJS.ProcessEnv = process.env): MosquittoServer | undefined {
  const { [MOSQUITTO_ENV.host]: host, [MOSQUITTO_ENV.port]: port, [MOSQUITTO_ENV.dir]: dir } = env;
  return host && port && dir ? MosquittoServer.attach({ host, port: Number(port), dir }) : undefined;
}
