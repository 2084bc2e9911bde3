import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { Injectable } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import mqtt from 'mqtt';
import { DataSource } from 'typeorm';
import { ConnectionHeartbeat, ConnectionHealthConfigError, MissingDependencyError, MonitorConnection } from '../lib/index.js';
import type { ConnectionDefinition } from '../lib/index.js';
import { TestApp, type TestAppOptions } from './kit/test-app.js';

const sqlite = { provide: DataSource, useFactory: () => new DataSource({ type: 'sqljs' }) };
const imap = { name: 'mail', kind: 'imap', client: 'imapflow', host: 'imap.example.com', auth: { user: 'ops', pass: 's3cr3t' } } as const;
const stomp = { name: 'broker', kind: 'stomp', host: 'mq.example.com' } as const;
const tcp = { name: 'smtp', kind: 'tcp', host: 'mail.example.com', port: 25 } as const;
const db = { name: 'db', kind: 'typeorm', dataSource: DataSource } as const;
const ping = async () => undefined;
const redisUrl = 'redis://cache.example.com:6379/0';
/** An ioredis client that never connects (lazyConnect), handed in as an app hands in its own. */
const lazyRedis = () => new Redis({ host: 'cache.example.com', lazyConnect: true });

const amqpUrl = 'amqp://broker.example.com:5672/orders';
const onMessage = () => undefined;

const mqttUrl = 'mqtt://broker.example.com:1883';
/** An MQTT.js client that never connects (manualConnect), handed in as an app hands in its own. */
const idleMqtt = (options: mqtt.IClientOptions = {}) => mqtt.connect('mqtt://broker.example.com:1883', { manualConnect: true, ...options });

const natsUrl = 'nats://broker.example.com:4222';
const NATS_FIX_OWNED = 'Leave it out: the package makes a new connection after a loss, with the reconnect options.';
const NATS_FIX_BOTH = "Give either connection (the app's nats.js connection, watched) or servers / natsOptions (the package makes its own), not both.";

/** forRoot() with these connections, and other module options. */
const forRoot = (connections: unknown[], options: object = {}): TestAppOptions => ({
  health: { connections: connections as ConnectionDefinition[], ...options },
  providers: [sqlite],
});

interface BadConfig {
  /** What is wrong. */
  readonly title: string;
  /** The app that must not bootstrap. */
  readonly app: () => TestAppOptions;
  /** The whole message: it names the place, the option, the value and the fix. */
  readonly message: string;
}

const KNOWN_MODULE = 'connections, defaults, shutdown, deadMan, metrics, openTelemetry, secrets, publishers';
const KNOWN_CONNECTION = 'name, kind, required, heartbeat, suspicion, reconnect, failure';
const MS = "Use a number of milliseconds above 0 and at most 2147483647 (Node's timer limit, about 24.8 days).";

const BAD_CONFIGS: readonly BadConfig[] = [
  // The module's own options, from forRoot() or an async factory.
  {
    title: 'connections given as an object',
    app: () => ({ health: { connections: {} as never } }),
    message:
      'ConnectionHealthModule.forRoot(): option "connections" is an object. ' +
      "Pass an array of connection definitions, e.g. [{ name: 'db', kind: 'typeorm', dataSource: DataSource }].",
  },
  {
    title: 'a misspelled module option',
    app: () => ({ health: { shutdwn: { timeoutMs: 5_000 } } as never }),
    message: `ConnectionHealthModule.forRoot(): option "shutdwn" is an object. There is no such option; the module takes ${KNOWN_MODULE}. Did you mean "shutdown"?`,
  },
  {
    title: 'a misspelled module option, returned by an async factory',
    app: () => ({ async: true, health: { deadman: { downForMs: 60_000 } } as never }),
    message: `ConnectionHealthModule.forRootAsync(): option "deadman" is an object. There is no such option; the module takes ${KNOWN_MODULE}. Did you mean "deadMan"?`,
  },
  {
    title: "forRoot's extra returned by an async factory",
    app: () => ({ async: true, health: { healthController: false } as never }),
    message:
      'ConnectionHealthModule.forRootAsync(): option "healthController" is false. Give it to ConnectionHealthModule.forRootAsync({ ' +
      'healthController, useFactory }) itself, not in the options its factory returns: routes and scope are fixed before any factory runs.',
  },
  {
    title: 'a shutdown deadline that is not a number',
    app: () => ({ health: { shutdown: { timeoutMs: NaN } } }),
    message: `ConnectionHealthModule.forRoot(): option "shutdown.timeoutMs" is NaN. ${MS}`,
  },
  {
    title: 'a misspelled shutdown option',
    app: () => ({ health: { shutdown: { drainMs: 5 } as never } }),
    message:
      'ConnectionHealthModule.forRoot(): option "shutdown.drainMs" is 5. There is no such option; shutdown takes drainDelayMs, timeoutMs, exitZeroOnSignal.',
  },
  {
    title: 'a dead-man exit code of 0',
    app: () => ({ health: { deadMan: { downForMs: 1_000, exitCode: 0 } } }),
    message:
      'ConnectionHealthModule.forRoot(): option "deadMan.exitCode" is 0. Use an integer from 1 to 255: exit code 0 would tell the orchestrator all went well.',
  },
  {
    title: 'a bad default interval',
    app: () => ({ health: { defaults: { heartbeat: { intervalMs: -1 } } } }),
    message: `ConnectionHealthModule.forRoot(): option "defaults.heartbeat.intervalMs" is -1. ${MS}`,
  },
  {
    title: 'a misspelled group in the defaults',
    app: () => ({ health: { defaults: { hearbeat: { intervalMs: 5_000 } } as never } }),
    message:
      'ConnectionHealthModule.forRoot(): option "defaults.hearbeat" is an object. There is no such option; defaults takes heartbeat, suspicion, reconnect, failure. Did you mean "defaults.heartbeat"?',
  },
  {
    title: 'a metrics prefix Prometheus refuses',
    app: () => ({ health: { metrics: { prefix: '9lives_' } } }),
    message:
      'ConnectionHealthModule.forRoot(): option "metrics.prefix" is "9lives_". Use letters, digits, underscores and colons, not starting with a digit (Prometheus metric names).',
  },
  {
    title: 'openTelemetry given as a string',
    app: () => ({ health: { openTelemetry: 'on' as never } }),
    message:
      'ConnectionHealthModule.forRoot(): option "openTelemetry" is "on". Use true (the global MeterProvider and TracerProvider) or an object with some of: meterProvider, tracerProvider, prefix; leave it out for none.',
  },
  {
    title: 'openTelemetry with a misspelled option',
    app: () => ({ health: { openTelemetry: { meterprovider: {} } as never } }),
    message:
      'ConnectionHealthModule.forRoot(): option "openTelemetry.meterprovider" is an object. There is no such option; openTelemetry takes meterProvider, tracerProvider, prefix. Did you mean "openTelemetry.meterProvider"?',
  },
  {
    title: 'an openTelemetry meterProvider that is no MeterProvider (a reader, say)',
    app: () => ({ health: { openTelemetry: { meterProvider: { collect: () => undefined } as never } } }),
    message:
      "ConnectionHealthModule.forRoot(): option \"openTelemetry.meterProvider\" is an object. Pass an OpenTelemetry MeterProvider (one with getMeter(), e.g. the SDK's new MeterProvider({ readers })), or leave it out for the global one.",
  },
  {
    title: 'an openTelemetry tracerProvider that is no TracerProvider',
    app: () => ({ health: { openTelemetry: { tracerProvider: null as never } } }),
    message:
      'ConnectionHealthModule.forRoot(): option "openTelemetry.tracerProvider" is null. Pass an OpenTelemetry TracerProvider (one with getTracer()), or leave it out for the global one.',
  },
  {
    title: 'an openTelemetry prefix that is no instrument name',
    app: () => ({ health: { openTelemetry: { prefix: 'connection-health.' } } }),
    message:
      'ConnectionHealthModule.forRoot(): option "openTelemetry.prefix" is "connection-health.". Use letters, digits and underscores, starting with a letter (valid as an OpenTelemetry instrument name and as a Prometheus one).',
  },
  {
    title: "forRoot's healthController with an unknown detail level",
    app: () => ({ healthController: { details: 'everything' as never } }),
    message: 'ConnectionHealthModule.forRoot(): option "healthController.details" is "everything". Use one of "full", "status", "none".',
  },
  {
    title: "forRoot's healthController with a misspelled option",
    app: () => ({ healthController: { detail: 'none' } as never }),
    message:
      'ConnectionHealthModule.forRoot(): option "healthController.detail" is a string. There is no such option; healthController takes path, details, decorators, port, host, awaitAppListen, ui. Did you mean "healthController.details"?',
  },
  {
    title: "forRoot's healthController with decorators that are not an array",
    app: () => ({ healthController: { decorators: (() => undefined) as never } }),
    message:
      'ConnectionHealthModule.forRoot(): option "healthController.decorators" is a function. Pass an array of class decorators, called as above a class, e.g. [SkipThrottle(), Public()].',
  },
  {
    title: "forRoot's healthController with a decorator that is no function",
    app: () => ({ healthController: { decorators: ['Public'] as never } }),
    message:
      'ConnectionHealthModule.forRoot(): option "healthController.decorators" is an array. Pass an array of class decorators, called as above a class, e.g. [SkipThrottle(), Public()].',
  },
  ...[-1, 0, 65536, 80.5, '9000'].map((port) => ({
    title: `forRoot's healthController with management port ${JSON.stringify(port)}`,
    app: (): TestAppOptions => ({ healthController: { port: port as number } }),
    message: `ConnectionHealthModule.forRoot(): option "healthController.port" is ${typeof port === 'string' ? `"${port}"` : port}. Use a whole number from 1 to 65535 for the management port, or leave it out to serve the probes as routes of the app.`,
  })),
  {
    title: "forRoot's healthController with both a management port and decorators, which nothing would apply there",
    app: () => ({ healthController: { port: 9000, decorators: [() => undefined] } }),
    message:
      'ConnectionHealthModule.forRoot(): option "healthController.decorators" is an array. The management port (healthController.port) serves the probes outside Nest, ' +
      'where no guard, interceptor or throttler applies: leave decorators out, or leave port out to serve the probes as routes of the app.',
  },
  {
    title: "forRoot's healthController with awaitAppListen but no port",
    app: () => ({ healthController: { awaitAppListen: false } }),
    message:
      'ConnectionHealthModule.forRoot(): option "healthController.awaitAppListen" is false. ' +
      "awaitAppListen holds the management port's readiness until the app listens: give healthController.port too, or leave it out.",
  },
  {
    title: "forRoot's healthController with an awaitAppListen that is no boolean",
    app: () => ({ healthController: { port: 9000, awaitAppListen: 'no' as never } }),
    message:
      'ConnectionHealthModule.forRoot(): option "healthController.awaitAppListen" is "no". ' +
      "Use true (readiness waits until the app's own HTTP server listens) or false (an app that never calls listen()).",
  },
  {
    title: "forRoot's healthController with a host but no port",
    app: () => ({ healthController: { host: '0.0.0.0' } }),
    message:
      'ConnectionHealthModule.forRoot(): option "healthController.host" is "0.0.0.0". host is where the management port listens: give healthController.port too, or leave host out.',
  },
  {
    title: "forRoot's healthController with an empty host",
    app: () => ({ healthController: { port: 9000, host: ' ' } }),
    message:
      'ConnectionHealthModule.forRoot(): option "healthController.host" is " ". Use an address or host name such as \'0.0.0.0\' or \'127.0.0.1\', or leave it out to listen on every interface.',
  },
  {
    title: 'a connection that is not an object',
    app: () => forRoot(['db']),
    message:
      "ConnectionHealthModule.forRoot() connections[0]: option \"connection\" is \"db\". Pass an object such as { name: 'db', kind: 'typeorm', dataSource: DataSource }.",
  },
  {
    title: 'a connection without a name',
    app: () => forRoot([tcp, { ...db, name: undefined }]),
    message: 'ConnectionHealthModule.forRoot() connections[1]: option "name" is undefined. Use a non-empty string.',
  },

  // Every connection, whatever its kind.
  {
    title: 'a misspelled connection option',
    app: () => forRoot([{ ...db, hearbeat: { intervalMs: 5_000 } }]),
    message:
      `Connection "db": option "hearbeat" is an object. There is no such option; a typeorm connection takes ${KNOWN_CONNECTION}, ` +
      'dataSource, pingQuery, postgresKeepAlive. Did you mean "heartbeat"?',
  },
  {
    title: 'a misspelled option of a heartbeat group',
    app: () => forRoot([{ ...tcp, heartbeat: { intervalMS: 5_000 } }]),
    message:
      'Connection "smtp": option "heartbeat.intervalMS" is 5000. There is no such option; heartbeat takes intervalMs, timeoutMs, ' +
      'connectTimeoutMs, jitter, failureThreshold, lagToleranceMs, staleAfterMs. Did you mean "heartbeat.intervalMs"?',
  },
  {
    title: 'an unknown kind',
    app: () => forRoot([{ name: 'cache', kind: 'memcached' }]),
    message: 'Connection "cache": option "kind" is "memcached". Use one of "typeorm", "tcp", "custom", "imap", "stomp", "redis", "amqp", "mqtt", "nats", "microservice".',
  },
  {
    title: 'required that is not a boolean',
    app: () => forRoot([{ ...tcp, required: 'yes' }]),
    message: 'Connection "smtp": option "required" is "yes". Use one of true, false.',
  },
  {
    title: 'a name used twice',
    app: () => forRoot([db, { ...tcp, name: 'db' }]),
    message: 'Connection "db" is registered twice (again by ConnectionHealthModule.forRoot() connections[1]). Give every monitored connection a unique name.',
  },
  {
    title: 'a heartbeat timeout that is not below the interval',
    app: () => forRoot([{ ...db, heartbeat: { intervalMs: 1_000, timeoutMs: 1_000 } }]),
    message:
      'Connection "db": option "heartbeat.timeoutMs" is 1000. It must be below heartbeat.intervalMs (1000), or beats would overlap; lower it or raise the interval.',
  },
  {
    title: 'no reconnect attempt at all',
    app: () => forRoot([{ ...tcp, reconnect: { maxAttempts: 0 } }]),
    message: 'Connection "smtp": option "reconnect.maxAttempts" is 0. Use a whole number of at least 1 or Infinity.',
  },
  {
    title: 'an unknown failure policy',
    app: () => forRoot([{ ...tcp, failure: { policy: 'crash' } }]),
    message: `Connection "smtp": option "failure.policy" is "crash". Use one of 'retry', 'stop', 'exit'.`,
  },

  // Each kind's own options.
  {
    title: 'typeorm: a DataSource token nothing provides',
    app: () => forRoot([{ ...db, dataSource: 'OrdersDataSource' }]),
    message:
      'Connection "db": option "dataSource" is "OrdersDataSource". No provider with that token holds a TypeORM DataSource. Register the ' +
      'DataSource as a provider (TypeOrmModule.forRoot does), import its module, or pass the instance itself.',
  },
  {
    title: 'typeorm: an empty ping query',
    app: () => forRoot([{ ...db, pingQuery: ' ' }]),
    message: 'Connection "db": option "pingQuery" is " ". Use a non-empty string.',
  },
  {
    title: 'typeorm: a misspelled postgresKeepAlive option',
    app: () => forRoot([{ ...db, postgresKeepAlive: { initialDelay: 10_000 } }]),
    message:
      'Connection "db": option "postgresKeepAlive.initialDelay" is 10000. There is no such option; postgresKeepAlive takes initialDelayMs. Did you mean "postgresKeepAlive.initialDelayMs"?',
  },
  {
    title: 'tcp: port 0',
    app: () => forRoot([{ ...tcp, port: 0 }]),
    message: 'Connection "smtp": option "port" is 0. Use a whole number from 1 to 65535.',
  },
  {
    title: 'tcp: a misspelled host',
    app: () => forRoot([{ name: 'smtp', kind: 'tcp', hots: 'mail.example.com', port: 25 }]),
    message:
      `Connection "smtp": option "hots" is a string. There is no such option; a tcp connection takes ${KNOWN_CONNECTION}, host, port, mode, keepAlive. Did you mean "host"?`,
  },
  {
    title: 'tcp: an unknown mode',
    app: () => forRoot([{ ...tcp, mode: 'keep' }]),
    message: 'Connection "smtp": option "mode" is "keep". Use one of "probe", "hold".',
  },
  {
    title: 'tcp: a misspelled keepAlive option',
    app: () => forRoot([{ ...tcp, mode: 'hold', keepAlive: { idle: 30_000 } }]),
    message:
      'Connection "smtp": option "keepAlive.idle" is 30000. There is no such option; keepAlive takes idleMs, intervalMs, count, userTimeoutMs. Did you mean "keepAlive.idleMs"?',
  },
  {
    title: 'custom: no ping',
    app: () => forRoot([{ name: 'cache', kind: 'custom' }]),
    message: 'Connection "cache": option "ping" is undefined. Pass a function (signal: AbortSignal) => Promise<unknown>.',
  },
  {
    title: 'custom: a misspelled ping',
    app: () => forRoot([{ name: 'cache', kind: 'custom', pnig: ping }]),
    message:
      `Connection "cache": option "pnig" is a function. There is no such option; a custom connection takes ${KNOWN_CONNECTION}, ping, open, close, target. Did you mean "ping"?`,
  },
  {
    title: 'imap: neither host nor factory',
    app: () => forRoot([{ name: 'mail', kind: 'imap', client: 'imapflow' }]),
    message:
      'Connection "mail": option "host" is undefined. Give host and auth, so that the package creates the ImapFlow clients, or a factory ' +
      'that returns a new, unconnected client for each session (with @MonitorConnection: decorate the method that creates it).',
  },
  {
    title: 'imap: an unknown client library',
    app: () => forRoot([{ ...imap, client: 'imap' }]),
    message: 'Connection "mail": option "client" is "imap". Use one of "imapflow", "node-imap".',
  },
  {
    title: 'imap: a misspelled password key, whose value is never shown',
    app: () => forRoot([{ ...imap, auth: { user: 'ops', password: 's3cr3t' } }]),
    message: 'Connection "mail": option "auth.password" is a string. There is no such option; auth takes user, pass.',
  },
  {
    title: 'imap: a session lifetime below the heartbeat interval',
    app: () => forRoot([{ ...imap, maxSessionMs: 60_000 }]),
    message:
      'Connection "mail": option "maxSessionMs" is 60000. It must exceed heartbeat.intervalMs (120000), since the lifetime is checked at each heartbeat; raise it or leave it out.',
  },
  {
    title: 'stomp: both url and host',
    app: () => forRoot([{ ...stomp, url: 'stomp://mq.example.com:61613' }]),
    message: 'Connection "broker": option "host" is "mq.example.com". Give either url or host (with port), not both.',
  },
  {
    title: 'stomp: a url of an unknown scheme',
    app: () => forRoot([{ name: 'broker', kind: 'stomp', url: 'http://mq.example.com:8161' }]),
    message:
      'Connection "broker": option "url" is "http://mq.example.com:8161". The scheme http: is not known; use stomp://host:61613, stomp+ssl://host:61614, ws://host:15674/ws or wss://....',
  },
  {
    title: 'stomp: a misspelled passcode, whose value is never shown',
    app: () => forRoot([{ ...stomp, login: 'app', passcod: 's3cr3t' }]),
    message:
      `Connection "broker": option "passcod" is a string. There is no such option; a stomp connection takes ${KNOWN_CONNECTION}, url, host, port, ` +
      'transport, login, passcode, vhost, connectHeaders, tls, allowInsecureAuth, keepAlive, stompHeartbeat, probe, subscriptions. Did you mean "passcode"?',
  },
  {
    title: 'stomp: a misspelled stompHeartbeat option',
    app: () => forRoot([{ ...stomp, stompHeartbeat: { incoming: 5_000 } }]),
    message:
      'Connection "broker": option "stompHeartbeat.incoming" is 5000. There is no such option; stompHeartbeat takes outgoingMs, incomingMs, ' +
      'toleranceMultiplier. Did you mean "stompHeartbeat.incomingMs"?',
  },
  {
    title: 'stomp: a subscription with a misspelled handler',
    app: () => forRoot([{ ...stomp, subscriptions: [{ destination: '/queue/orders', onMesage: () => undefined }] }]),
    message:
      'Connection "broker": option "subscriptions[0].onMesage" is a function. There is no such option; subscriptions[0] takes destination, headers, onMessage. Did you mean "subscriptions[0].onMessage"?',
  },

  {
    title: 'redis: both client and url',
    app: () => forRoot([{ name: 'cache', kind: 'redis', client: lazyRedis(), url: redisUrl }]),
    message: `Connection "cache": option "url" is "(given beside client)". Give either client (the app's ioredis client, watched) or url / redisOptions (the package creates its own client), not both.`,
  },
  {
    title: 'redis: both client and redisOptions',
    app: () => forRoot([{ name: 'cache', kind: 'redis', client: lazyRedis(), redisOptions: { db: 1 } }]),
    message: `Connection "cache": option "redisOptions" is "(given beside client)". Give either client (the app's ioredis client, watched) or url / redisOptions (the package creates its own client), not both.`,
  },
  {
    title: 'redis: neither client nor url',
    app: () => forRoot([{ name: 'cache', kind: 'redis' }]),
    message:
      'Connection "cache": option "client" is undefined. Give client: the app\'s ioredis client or its provider\'s token, or url / redisOptions ' +
      'for a client the package creates.',
  },
  {
    title: 'redis: a client that is not an ioredis client',
    app: () => forRoot([{ name: 'cache', kind: 'redis', client: { ping: async () => 'PONG', status: 'ready' } }]),
    message: 'Connection "cache": option "client" is "(not an ioredis client)". Pass an ioredis Redis client (new Redis(...)), or the token of its provider.',
  },
  {
    title: 'redis: an ioredis Cluster',
    app: () => forRoot([{ name: 'cache', kind: 'redis', client: new Cluster([{ host: 'cache.example.com', port: 6379 }], { lazyConnect: true }) }]),
    message:
      'Connection "cache": option "client" is "(an ioredis Cluster)". Redis Cluster is not supported: monitor a standalone server (or one behind ' +
      'Sentinel) through its ioredis Redis client.',
  },
  {
    title: 'redis: a client token nothing provides',
    app: () => forRoot([{ name: 'cache', kind: 'redis', client: 'REDIS_CLIENT' }]),
    message:
      'Connection "cache": option "client" is "REDIS_CLIENT". No provider with that token holds a client. Register the ioredis client as a provider, ' +
      'import its module, or pass the client itself.',
  },
  {
    title: 'redis: redisOptions.retryStrategy, which the package owns',
    app: () => forRoot([{ name: 'cache', kind: 'redis', url: redisUrl, redisOptions: { retryStrategy: () => 100 } }]),
    message: `Connection "cache": option "redisOptions.retryStrategy" is "(a function)". Leave it out: the package connects the client, and reconnects it with the reconnect options.`,
  },
  {
    title: 'redis: redisOptions.lazyConnect, which the package owns',
    app: () => forRoot([{ name: 'cache', kind: 'redis', redisOptions: { host: 'cache.example.com', lazyConnect: false } }]),
    message: `Connection "cache": option "redisOptions.lazyConnect" is false. Leave it out: the package connects the client, and reconnects it with the reconnect options.`,
  },
  {
    title: 'redis: a url of another scheme',
    app: () => forRoot([{ name: 'cache', kind: 'redis', url: 'http://cache.example.com:6379' }]),
    message: `Connection "cache": option "url" is "http://cache.example.com:6379". Use a redis:// or rediss:// (TLS) URL, e.g. 'redis://:password@cache:6379/0'.`,
  },
  {
    title: 'redis: a misspelled redisOptions',
    app: () => forRoot([{ name: 'cache', kind: 'redis', url: redisUrl, redisOption: { db: 1 } }]),
    message:
      `Connection "cache": option "redisOption" is an object. There is no such option; a redis connection takes ${KNOWN_CONNECTION}, ` +
      'client, url, redisOptions, allowInsecureAuth, keepAlive. Did you mean "redisOptions"?',
  },
  {
    title: 'amqp: both connection and url',
    app: () => forRoot([{ name: 'orders', kind: 'amqp', connection: 'AMQP_CONNECTION', url: amqpUrl }]),
    message: `Connection "orders": option "url" is "(given beside connection)". Give either connection (the app's, watched) or url / socketOptions (the package opens its own), not both.`,
  },
  {
    title: 'amqp: neither connection nor url',
    app: () => forRoot([{ name: 'orders', kind: 'amqp', socketOptions: {} }]),
    message:
      'Connection "orders": option "url" is undefined. Give url for a connection the package opens (amqp://user:password@host:5672/vhost), ' +
      "or connection: the app's amqplib connection, amqp-connection-manager or its provider's token.",
  },
  {
    title: 'amqp: a url of another scheme',
    app: () => forRoot([{ name: 'orders', kind: 'amqp', url: 'http://broker.example.com:5672' }]),
    message: `Connection "orders": option "url" is "http://broker.example.com:5672". Use an amqp:// or amqps:// (TLS) URL, e.g. 'amqp://user:password@broker:5672/vhost'.`,
  },
  {
    title: 'amqp: a connection that is not one',
    app: () => forRoot([{ name: 'orders', kind: 'amqp', connection: { close: async () => undefined } }]),
    message:
      'Connection "orders": option "connection" is "(not an amqplib connection)". Pass what amqplib\'s promise API gives (await amqp.connect(url), ' +
      'with or without { recovery }), an amqp-connection-manager (amqp.connect([url])), or the token of its provider.',
  },
  {
    title: "amqp: a model of amqplib's callback API",
    app: () => {
      // Never connected: a callback model is refused before it would be used.
      class CallbackModel {
        connection = {};
        on() {}
        removeListener() {}
        close() {}
        createConfirmChannel() {}
      }
      return forRoot([{ name: 'orders', kind: 'amqp', connection: new CallbackModel() }]);
    },
    message:
      'Connection "orders": option "connection" is "(not an amqplib connection)". Pass what amqplib\'s promise API gives (await amqp.connect(url), ' +
      'with or without { recovery }), an amqp-connection-manager (amqp.connect([url])), or the token of its provider.',
  },
  {
    title: 'amqp: a connection token nothing provides',
    app: () => forRoot([{ name: 'orders', kind: 'amqp', connection: 'AMQP_CONNECTION' }]),
    message:
      'Connection "orders": option "connection" is "AMQP_CONNECTION". No provider with that token holds a connection. Register the connection as a ' +
      'provider, import its module, or pass the connection itself.',
  },
  {
    title: 'amqp: consumers that are not an array',
    app: () => forRoot([{ name: 'orders', kind: 'amqp', url: amqpUrl, consumers: { queue: 'orders', onMessage } }]),
    message: 'Connection "orders": option "consumers" is an object. Pass an array of { queue, assert?, prefetch?, noAck?, requeueFailed?, onMessage }.',
  },
  {
    title: 'amqp: a consumer without onMessage',
    app: () => forRoot([{ name: 'orders', kind: 'amqp', url: amqpUrl, consumers: [{ queue: 'orders' }] }]),
    message: 'Connection "orders": option "consumers[0].onMessage" is undefined. Pass a function (message: AmqpMessage) => unknown.',
  },
  {
    title: 'amqp: a consumer without queue',
    app: () => forRoot([{ name: 'orders', kind: 'amqp', url: amqpUrl, consumers: [{ queue: ' ', onMessage }] }]),
    message: 'Connection "orders": option "consumers[0].queue" is " ". Use a non-empty string.',
  },
  {
    title: 'amqp: a misspelled consumer option',
    app: () => forRoot([{ name: 'orders', kind: 'amqp', url: amqpUrl, consumers: [{ queue: 'orders', prefecth: 10, onMessage }] }]),
    message:
      'Connection "orders": option "consumers[0].prefecth" is 10. There is no such option; consumers[0] takes queue, assert, prefetch, noAck, onMessage, requeueFailed. ' +
      'Did you mean "consumers[0].prefetch"?',
  },
  {
    title: 'amqp: a prefetch of 0',
    app: () => forRoot([{ name: 'orders', kind: 'amqp', url: amqpUrl, consumers: [{ queue: 'orders', prefetch: 0, onMessage }] }]),
    message: 'Connection "orders": option "consumers[0].prefetch" is 0. Use a whole number of at least 1 or leave it out (10).',
  },
  {
    title: 'amqp: an unknown requeueFailed',
    app: () => forRoot([{ name: 'orders', kind: 'amqp', url: amqpUrl, consumers: [{ queue: 'orders', requeueFailed: 'never', onMessage }] }]),
    message: 'Connection "orders": option "consumers[0].requeueFailed" is "never". Use one of "once", "always".',
  },
  {
    title: 'amqp: an unknown probe',
    app: () => forRoot([{ name: 'orders', kind: 'amqp', url: amqpUrl, probe: 'ping' }]),
    message: 'Connection "orders": option "probe" is "ping". Use one of "publish", "declare".',
  },

  {
    title: 'mqtt: both client and url',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', client: 'MQTT_CLIENT', url: mqttUrl }]),
    message: `Connection "devices": option "url" is "(given beside client)". Give either client (the app's MQTT.js client, watched) or url / mqttOptions (the package creates its own client), not both.`,
  },
  {
    title: 'mqtt: both client and mqttOptions',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', client: idleMqtt(), mqttOptions: { clean: false } }]),
    message: `Connection "devices": option "mqttOptions" is "(given beside client)". Give either client (the app's MQTT.js client, watched) or url / mqttOptions (the package creates its own client), not both.`,
  },
  {
    title: 'mqtt: neither client nor url nor mqttOptions',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', subscriptions: [] }]),
    message: `Connection "devices": option "client" is undefined. Give client: the app's MQTT.js client or its provider's token, or url / mqttOptions for a client the package creates.`,
  },
  {
    title: 'mqtt: a url of another scheme',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: 'http://broker.example.com:1883' }]),
    message: `Connection "devices": option "url" is "http://broker.example.com:1883". Use an mqtt://, mqtts:// (TLS), ws:// or wss:// URL, e.g. 'mqtts://user:password@broker:8883'.`,
  },
  {
    title: 'mqtt: a client that is not an MQTT.js client',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', client: { publish() {}, end() {}, connected: false } }]),
    message: 'Connection "devices": option "client" is "(not an MQTT.js client)". Pass an MQTT.js client (mqtt.connect(...), version 5), or the token of its provider.',
  },
  {
    title: 'mqtt: a client token nothing provides',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', client: 'MQTT_CLIENT' }]),
    message: 'Connection "devices": option "client" is "MQTT_CLIENT". No provider with that token holds a client. Register the MQTT.js client as a provider, import its module, or pass the client itself.',
  },
  {
    title: "mqtt: mqttOptions.reconnectPeriod, the package's to set",
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, mqttOptions: { reconnectPeriod: 1000 } }]),
    message: 'Connection "devices": option "mqttOptions.reconnectPeriod" is 1000. Leave it out: the package connects the client, and reconnects it with the reconnect options.',
  },
  {
    title: "mqtt: mqttOptions.manualConnect, the package's to set",
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, mqttOptions: { manualConnect: false } }]),
    message: 'Connection "devices": option "mqttOptions.manualConnect" is false. Leave it out: the package connects the client, and reconnects it with the reconnect options.',
  },
  {
    title: 'mqtt: mqttOptions that are not an object',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, mqttOptions: 'clean=false' }]),
    message: 'Connection "devices": option "mqttOptions" is "clean=false". Use an object of MQTT.js options (clientId, username, password, clean, protocolVersion, ...), or leave it out.',
  },
  {
    title: 'mqtt: subscriptions with resubscribe: false in mqttOptions',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, mqttOptions: { resubscribe: false }, subscriptions: [{ topic: 'sensors/#', onMessage }] }]),
    message: 'Connection "devices": option "mqttOptions.resubscribe" is false. With subscriptions, the client must make them again after a reconnect: leave resubscribe out (true).',
  },
  {
    title: "mqtt: subscriptions on an app's client with resubscribe: false",
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', client: idleMqtt({ resubscribe: false }), subscriptions: [{ topic: 'sensors/#', onMessage }] }]),
    message: 'Connection "devices": option "client" is "(resubscribe: false)". With subscriptions, the client must make them again after a reconnect: leave its resubscribe option at true.',
  },
  {
    title: 'mqtt: subscriptions that are not an array',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, subscriptions: { topic: 'sensors/#', onMessage } }]),
    message: 'Connection "devices": option "subscriptions" is an object. Pass an array of { topic, qos?, onMessage }.',
  },
  {
    title: 'mqtt: a subscription filter with # before its last level',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, subscriptions: [{ topic: 'sensors/#/temperature', onMessage }] }]),
    message: `Connection "devices": option "subscriptions[0].topic" is "sensors/#/temperature". Use a topic filter such as 'sensors/+/temperature' or 'orders/#': '#' must be the whole last level.`,
  },
  {
    title: 'mqtt: a subscription filter with + inside a level',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, subscriptions: [{ topic: 'sensors/room+/temperature', onMessage }] }]),
    message: `Connection "devices": option "subscriptions[0].topic" is "sensors/room+/temperature". Use a topic filter such as 'sensors/+/temperature' or 'orders/#': '+' must be a whole level.`,
  },
  {
    title: 'mqtt: a shared subscription without its group',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, subscriptions: [{ topic: '$share//jobs', onMessage }] }]),
    message: `Connection "devices": option "subscriptions[0].topic" is "$share//jobs". Use a topic filter such as 'sensors/+/temperature' or 'orders/#': a shared subscription is $share/<group>/<filter>.`,
  },
  {
    title: 'mqtt: a subscription of QoS 3',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, subscriptions: [{ topic: 'sensors/#', qos: 3, onMessage }] }]),
    message: 'Connection "devices": option "subscriptions[0].qos" is 3. Use one of 0, 1, 2.',
  },
  {
    title: 'mqtt: a subscription without onMessage',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, subscriptions: [{ topic: 'sensors/#' }] }]),
    message: 'Connection "devices": option "subscriptions[0].onMessage" is undefined. Pass a function (message: MqttMessage) => unknown.',
  },
  {
    title: 'mqtt: a misspelled subscription option',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, subscriptions: [{ topic: 'sensors/#', qso: 1, onMessage }] }]),
    message: 'Connection "devices": option "subscriptions[0].qso" is 1. There is no such option; subscriptions[0] takes topic, qos, onMessage. Did you mean "subscriptions[0].qos"?',
  },
  {
    title: 'mqtt: a beatTopic with a wildcard',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, beatTopic: 'health/+' }]),
    message: 'Connection "devices": option "beatTopic" is "health/+". Use a topic name to publish to: a topic to publish to holds no wildcard (+ or #).',
  },
  {
    title: 'mqtt: a probe that is neither publish nor ping',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, probe: 'pong' }]),
    message: 'Connection "devices": option "probe" is "pong". Use one of "publish", "ping".',
  },
  {
    title: 'mqtt: a misspelled option',
    app: () => forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, mqttOption: { clean: false } }]),
    message: 'Connection "devices": option "mqttOption" is an object. There is no such option; a mqtt connection takes name, kind, required, heartbeat, suspicion, reconnect, failure, client, url, mqttOptions, subscriptions, probe, beatTopic, allowInsecureAuth. Did you mean "mqttOptions"?',
  },

  {
    title: 'nats: both connection and servers',
    app: () => forRoot([{ name: 'events', kind: 'nats', connection: 'NATS', servers: natsUrl }]),
    message: `Connection "events": option "servers" is "(given beside connection)". ${NATS_FIX_BOTH}`,
  },
  {
    title: 'nats: both connection and natsOptions',
    app: () => forRoot([{ name: 'events', kind: 'nats', connection: 'NATS', natsOptions: { name: 'events' } }]),
    message: `Connection "events": option "natsOptions" is "(given beside connection)". ${NATS_FIX_BOTH}`,
  },
  {
    title: 'nats: neither connection nor servers nor natsOptions',
    app: () => forRoot([{ name: 'events', kind: 'nats', subscriptions: [] }]),
    message:
      'Connection "events": option "connection" is undefined. ' +
      "Give connection: the app's nats.js connection or its provider's token, or servers / natsOptions for a connection the package makes.",
  },
  {
    title: 'nats: a server of another scheme',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: 'http://broker.example.com:4222' }]),
    message: `Connection "events": option "servers" is "http://broker.example.com:4222". Use 'nats://host:4222', 'tls://host:4222' (TLS) or 'host:4222', or a list of them: nats.js's connect() speaks TCP, not WebSocket.`,
  },
  {
    title: 'nats: a list of servers with a path in one',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: [natsUrl, 'nats://other.example.com:4222/events'] }]),
    message: `Connection "events": option "servers" is "nats://broker.example.com:4222, nats://other.example.com:4222/events". Use 'nats://host:4222', 'tls://host:4222' (TLS) or 'host:4222', or a list of them: nats.js's connect() speaks TCP, not WebSocket.`,
  },
  {
    title: 'nats: an empty list of servers',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: [] }]),
    message: `Connection "events": option "servers" is "". Use 'nats://host:4222', 'tls://host:4222' (TLS) or 'host:4222', or a list of them: nats.js's connect() speaks TCP, not WebSocket.`,
  },
  {
    title: 'nats: a WebSocket server (nats.js would dial it in plain TCP)',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: 'wss://ops:s3cret@broker.example.com:443' }]),
    message: `Connection "events": option "servers" is "wss://broker.example.com:443". Use 'nats://host:4222', 'tls://host:4222' (TLS) or 'host:4222', or a list of them: nats.js's connect() speaks TCP, not WebSocket.`,
  },
  {
    title: 'nats: tls:// for some servers only',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: ['tls://a.example.com:4222', 'nats://b.example.com:4222'] }]),
    message:
      'Connection "events": option "servers" is "tls://a.example.com:4222, nats://b.example.com:4222". ' +
      'Use tls:// for every server or for none: nats.js takes one TLS setting for the whole list.',
  },
  {
    title: 'nats: tls:// servers with TLS turned off',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: 'tls://a.example.com:4222', natsOptions: { tls: null } }]),
    message: 'Connection "events": option "natsOptions.tls" is null. Leave it out, or give TLS options: the servers are tls://, so the connection requires TLS.',
  },
  {
    title: 'nats: tls:// servers with tls: false',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: 'tls://a.example.com:4222', natsOptions: { tls: false } }]),
    message: 'Connection "events": option "natsOptions.tls" is false. Leave it out, or give TLS options: the servers are tls://, so the connection requires TLS.',
  },
  {
    title: 'nats: TLS-first on a connection the package makes (its dials could not be destroyed)',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: 'tls://a.example.com:4222', natsOptions: { tls: { handshakeFirst: true } } }]),
    message:
      'Connection "events": option "natsOptions.tls.handshakeFirst" is true. Leave it out for a connection the package makes: nats.js keeps the socket of a ' +
      'TLS-first handshake it gave up on, which the package cannot destroy (one per attempt into a stalled server). Make the connection yourself and hand it in as connection.',
  },
  {
    title: 'nats: servers with different credentials',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: ['nats://ops:one@a.example.com:4222', 'nats://ops:two@b.example.com:4222'] }]),
    message:
      'Connection "events": option "servers" is "nats://a.example.com:4222, nats://b.example.com:4222". The servers carry different credentials, but nats.js sends ' +
      'one user and password (or token) to every server. Give the same in each, or give them once as natsOptions.user / pass / token.',
  },
  {
    title: 'nats: a connection that is not a nats.js connection',
    app: () => forRoot([{ name: 'events', kind: 'nats', connection: { rtt() {}, close() {}, publish() {} } }]),
    message: 'Connection "events": option "connection" is "(not a nats.js connection)". Pass what nats.js\'s connect() resolves to (nats 2.x, or @nats-io/transport-node 3.x), or the token of its provider.',
  },
  {
    title: 'nats: a connection token nothing provides',
    app: () => forRoot([{ name: 'events', kind: 'nats', connection: 'NATS_CONNECTION' }]),
    message:
      'Connection "events": option "connection" is "NATS_CONNECTION". No provider with that token holds a connection. ' +
      'Register the nats.js connection as a provider, import its module, or pass the connection itself.',
  },
  {
    title: "nats: natsOptions.reconnect, the package's to set",
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, natsOptions: { reconnect: true } }]),
    message: `Connection "events": option "natsOptions.reconnect" is true. ${NATS_FIX_OWNED}`,
  },
  {
    title: "nats: natsOptions.maxReconnectAttempts, the package's to set",
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, natsOptions: { maxReconnectAttempts: -1 } }]),
    message: `Connection "events": option "natsOptions.maxReconnectAttempts" is -1. ${NATS_FIX_OWNED}`,
  },
  {
    title: "nats: natsOptions.waitOnFirstConnect, the package's to set",
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, natsOptions: { waitOnFirstConnect: true } }]),
    message: `Connection "events": option "natsOptions.waitOnFirstConnect" is true. ${NATS_FIX_OWNED}`,
  },
  {
    title: 'nats: natsOptions.servers instead of servers',
    app: () => forRoot([{ name: 'events', kind: 'nats', natsOptions: { servers: [natsUrl] } }]),
    message: 'Connection "events": option "natsOptions.servers" is "(given)". Give the servers as the servers option.',
  },
  {
    title: 'nats: natsOptions that are not an object',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, natsOptions: 'name=events' }]),
    message: 'Connection "events": option "natsOptions" is "name=events". Use an object of nats.js options (user, pass, token, name, tls, ...), or leave it out.',
  },
  {
    title: 'nats: subscriptions that are not an array',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, subscriptions: { subject: 'orders.*', onMessage } }]),
    message: 'Connection "events": option "subscriptions" is an object. Pass an array of { subject, queue?, onMessage }.',
  },
  {
    title: 'nats: a subscription without a subject',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, subscriptions: [{ onMessage }] }]),
    message: 'Connection "events": option "subscriptions[0].subject" is undefined. Use a non-empty string.',
  },
  {
    title: 'nats: a subject with white space',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, subscriptions: [{ subject: 'orders created', onMessage }] }]),
    message:
      'Connection "events": option "subscriptions[0].subject" is "orders created". ' +
      "Use a subject without white space, such as 'orders.created', 'orders.*' or 'orders.>'.",
  },
  {
    title: 'nats: an empty queue group',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, subscriptions: [{ subject: 'orders.*', queue: '', onMessage }] }]),
    message: 'Connection "events": option "subscriptions[0].queue" is "". Use a non-empty string.',
  },
  {
    title: 'nats: a subscription without onMessage',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, subscriptions: [{ subject: 'orders.*' }] }]),
    message: 'Connection "events": option "subscriptions[0].onMessage" is undefined. Pass a function (message: NatsMessage) => unknown.',
  },
  {
    title: 'nats: a misspelled subscription option',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, subscriptions: [{ subject: 'orders.*', qeue: 'workers', onMessage }] }]),
    message:
      'Connection "events": option "subscriptions[0].qeue" is a string. There is no such option; subscriptions[0] takes subject, queue, onMessage. ' +
      'Did you mean "subscriptions[0].queue"?',
  },
  {
    title: 'nats: allowInsecureAuth that is not a boolean',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, allowInsecureAuth: 'yes' }]),
    message: 'Connection "events": option "allowInsecureAuth" is a string. Use one of true, false.',
  },
  {
    title: 'nats: a misspelled option',
    app: () => forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, natsOption: { name: 'events' } }]),
    message:
      `Connection "events": option "natsOption" is an object. There is no such option; a nats connection takes ${KNOWN_CONNECTION}, ` +
      'connection, servers, natsOptions, subscriptions, allowInsecureAuth. Did you mean "natsOptions"?',
  },

  // Decorated connections get the same checks, and their messages name the decorated member.
  {
    title: '@MonitorConnection with a misspelled option',
    app: () => {
      @Injectable()
      class MailWatcher {
        @MonitorConnection({ ...imap, hearbeat: { intervalMs: 60_000 } } as never)
        client?: unknown;
      }
      return { providers: [MailWatcher] };
    },
    message:
      `Connection "mail" (@MonitorConnection on MailWatcher.client): option "hearbeat" is an object. There is no such option; an imap connection takes ${KNOWN_CONNECTION}, ` +
      'client, factory, host, port, secure, auth, tls, allowInsecureAuth, mailbox, maxSessionMs. Did you mean "heartbeat"?',
  },
  {
    title: '@MonitorConnection of a kind no member can hold',
    app: () => {
      @Injectable()
      class Relay {
        @MonitorConnection({ ...tcp } as never)
        socket?: unknown;
      }
      return { providers: [Relay] };
    },
    message:
      '@MonitorConnection on Relay.socket: option "kind" is "tcp". Use "typeorm", "imap", "stomp", "redis", "amqp", "mqtt", "nats" or "microservice": the kinds whose client a member holds. ' +
      'Declare tcp and custom connections in forRoot(), or make a method the heartbeat with @ConnectionHeartbeat().',
  },
  {
    title: '@ConnectionHeartbeat with a bad interval',
    app: () => {
      @Injectable()
      class Cache {
        @ConnectionHeartbeat('cache', { heartbeat: { intervalMs: -5 } })
        async ping(): Promise<void> {}
      }
      return { providers: [Cache] };
    },
    message: `Connection "cache" (@ConnectionHeartbeat on Cache.ping): option "heartbeat.intervalMs" is -5. ${MS}`,
  },
  {
    title: '@ConnectionHeartbeat with a misspelled option',
    app: () => {
      @Injectable()
      class Cache {
        @ConnectionHeartbeat('cache', { requried: false } as never)
        async ping(): Promise<void> {}
      }
      return { providers: [Cache] };
    },
    message:
      `Connection "cache" (@ConnectionHeartbeat on Cache.ping): option "requried" is false. There is no such option; a custom connection takes ${KNOWN_CONNECTION}, ` +
      'ping, open, close, target. Did you mean "required"?',
  },
  {
    title: 'a connection of an async factory, checked as forRoot checks it',
    app: () => ({ async: true, health: { connections: [{ ...tcp, port: 70_000 }] } }),
    message: 'Connection "smtp": option "port" is 70000. Use a whole number from 1 to 65535.',
  },
];

async function bootstrapError(options: TestAppOptions): Promise<Error> {
  try {
    const app = await TestApp.start(options);
    await app.close();
  } catch (error) {
    return error as Error;
  }
  assert.fail('the app bootstrapped although its configuration is wrong');
}

describe('bad configurations stop the bootstrap with a message that names the place, the value and the fix', () => {
  for (const { title, app, message } of BAD_CONFIGS) {
    it(title, async () => {
      const error = await bootstrapError(app());
      assert.ok(error instanceof ConnectionHealthConfigError, `expected a ConnectionHealthConfigError, got ${error.stack}`);
      assert.equal(error.message, message);
    });
  }
});

describe('a bad configuration never shows a credential, in its message nor in the error Node prints', () => {
  const secret = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc';
  const cases: Array<[string, TestAppOptions]> = [
    ['secrets given as a string', forRoot([], { secrets: secret })],
    ['a TLS key where the tls options belong', forRoot([{ ...stomp, tls: secret }])],
    ['a header that is not a string beside a credential header', forRoot([{ ...stomp, connectHeaders: { Authorization: `Bearer ${secret}`, 'x-retry': 3 } }])],
    ['an IMAP factory beside a login', forRoot([{ name: 'mail', kind: 'imap', client: 'imapflow', auth: { user: 'ops', pass: secret }, factory: () => ({}) }])],
    ['a passcode that is not a string', forRoot([{ ...stomp, passcode: [secret] }])],
    ['a Redis url of another scheme, with a password', forRoot([{ name: 'cache', kind: 'redis', url: `http://:${secret}@cache.example.com:6379` }])],
    ['a Redis url beside a client', forRoot([{ name: 'cache', kind: 'redis', client: lazyRedis(), url: `redis://:${secret}@cache.example.com:6379` }])],
    ['redisOptions with a password and a retryStrategy', forRoot([{ name: 'cache', kind: 'redis', redisOptions: { password: secret, retryStrategy: () => 1 } }])],
    ['an AMQP url of another scheme, with a password', forRoot([{ name: 'orders', kind: 'amqp', url: `http://ops:${secret}@broker.example.com` }])],
    ['an AMQP url beside a connection', forRoot([{ name: 'orders', kind: 'amqp', connection: 'AMQP', url: `amqp://ops:${secret}@broker.example.com` }])],
    ['socketOptions with a passphrase and a bad consumer', forRoot([{ name: 'orders', kind: 'amqp', url: amqpUrl, socketOptions: { passphrase: secret }, consumers: [{}] }])],
    ['a non-ioredis client holding a password', forRoot([{ name: 'cache', kind: 'redis', client: { options: { password: secret } } }])],
    ['an MQTT url of another scheme, with a password', forRoot([{ name: 'devices', kind: 'mqtt', url: `http://ops:${secret}@broker.example.com` }])],
    ['an MQTT url beside a client', forRoot([{ name: 'devices', kind: 'mqtt', client: 'MQTT', url: `mqtt://ops:${secret}@broker.example.com` }])],
    ['an MQTT url with a password and a reconnectPeriod', forRoot([{ name: 'devices', kind: 'mqtt', url: `mqtts://ops:${secret}@broker.example.com`, mqttOptions: { reconnectPeriod: 1000 } }])],
    ['mqttOptions with a password and a manualConnect', forRoot([{ name: 'devices', kind: 'mqtt', mqttOptions: { username: 'ops', password: secret, manualConnect: true } }])],
    ['mqttOptions with a nested password and a bad subscription', forRoot([{ name: 'devices', kind: 'mqtt', url: mqttUrl, mqttOptions: { wsOptions: { headers: { 'x-api-token': secret } } }, subscriptions: [{}] }])],
    ['a url given as mqttOptions', forRoot([{ name: 'devices', kind: 'mqtt', mqttOptions: `mqtt://ops:${secret}@broker.example.com` }])],
    ["an app's MQTT.js client with a password, beside a url", forRoot([{ name: 'devices', kind: 'mqtt', client: idleMqtt({ username: 'ops', password: secret }), url: mqttUrl }])],
    ['a non-MQTT.js client holding a password', forRoot([{ name: 'devices', kind: 'mqtt', client: { options: { password: secret }, connected: false } }])],
    ['a NATS server of another scheme, with a password', forRoot([{ name: 'events', kind: 'nats', servers: `http://ops:${secret}@broker.example.com:4222` }])],
    ['a NATS server with a password, without a scheme, beside a bad one', forRoot([{ name: 'events', kind: 'nats', servers: [`ops:${secret}@broker.example.com:4222`, 'http://other.example.com'] }])],
    ['NATS servers with different passwords', forRoot([{ name: 'events', kind: 'nats', servers: [`nats://ops:${secret}@a.example.com`, `nats://${secret}@b.example.com`] }])],
    ['a NATS server with a password beside a connection', forRoot([{ name: 'events', kind: 'nats', connection: 'NATS', servers: `nats://ops:${secret}@broker.example.com:4222` }])],
    ['natsOptions with a pass and a reconnect', forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, natsOptions: { user: 'ops', pass: secret, reconnect: true } }])],
    ['natsOptions with a token and a bad subscription', forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, natsOptions: { token: secret }, subscriptions: [{}] }])],
    ['natsOptions with a nested passphrase and waitOnFirstConnect', forRoot([{ name: 'events', kind: 'nats', servers: natsUrl, natsOptions: { tls: { passphrase: secret }, waitOnFirstConnect: true } }])],
    ['a url given as natsOptions', forRoot([{ name: 'events', kind: 'nats', natsOptions: `nats://ops:${secret}@broker.example.com` }])],
    ['a non-nats.js connection holding a password', forRoot([{ name: 'events', kind: 'nats', connection: { options: { pass: secret }, rtt() {} } }])],
  ];
  for (const [title, options] of cases) {
    it(title, async () => {
      const error = await bootstrapError(options);
      assert.ok(error instanceof ConnectionHealthConfigError, `expected a ConnectionHealthConfigError, got ${error.stack}`);
      const printed = inspect(error, { depth: Infinity, showHidden: true });
      assert.ok(!printed.includes(secret), printed);
    });
  }
});

/**
 * A copy of the build whose node_modules holds links to every installed package but `missing`: the
 * package's peer check and its import then resolve exactly as in an app that never installed them.
 */
class PeerlessTree {
  private static readonly build = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  private static readonly installed = path.resolve(PeerlessTree.build, '..', 'node_modules');
  readonly root = mkdtempSync(path.join(tmpdir(), 'connection-health-peerless-'));

  constructor(missing: readonly string[]) {
    writeFileSync(path.join(this.root, 'package.json'), JSON.stringify({ type: 'module' }));
    for (const part of ['lib', 'test/kit']) cpSync(path.join(PeerlessTree.build, part), path.join(this.root, part), { recursive: true });
    const modules = path.join(this.root, 'node_modules');
    const link = (name: string) => symlinkSync(path.join(PeerlessTree.installed, name), path.join(modules, name));
    mkdirSync(modules);
    for (const entry of readdirSync(PeerlessTree.installed)) {
      if (!entry.startsWith('@')) {
        if (!missing.includes(entry)) link(entry);
        continue;
      }
      mkdirSync(path.join(modules, entry));
      for (const scoped of readdirSync(path.join(PeerlessTree.installed, entry))) {
        if (!missing.includes(`${entry}/${scoped}`)) link(`${entry}/${scoped}`);
      }
    }
  }

  /** Runs kit/missing-peer.app.js for `which` case and returns what it wrote. */
  async run(which: string): Promise<{ error?: string; message?: string; started?: boolean }> {
    const child = spawn(process.execPath, [path.join(this.root, 'test/kit/missing-peer.app.js'), which], {
      env: { ...process.env, NODE_PATH: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    assert.equal(code, 0, `the app process failed: ${stderr}`);
    return JSON.parse(stdout.trim()) as { error?: string; message?: string; started?: boolean };
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

const MISSING_PEERS = [
  { which: 'node-imap', missing: 'imap', feature: 'IMAP connections with client "node-imap"', place: 'Connection "mail"' },
  { which: 'imapflow', missing: 'imapflow', feature: 'IMAP connections with client "imapflow"', place: 'Connection "mail"' },
  { which: 'stomp', missing: '@stomp/stompjs', feature: 'STOMP connections', place: 'Connection "broker"' },
  { which: 'stomp-websocket', missing: 'ws', feature: 'STOMP over WebSocket', place: 'Connection "broker"' },
  { which: 'redis', missing: 'ioredis', feature: 'Redis connections', place: 'Connection "cache"' },
  { which: 'amqp', missing: 'amqplib', feature: 'AMQP connections', place: 'Connection "orders"' },
  { which: 'mqtt', missing: 'mqtt', feature: 'MQTT connections', place: 'Connection "devices"' },
  { which: 'metrics', missing: 'prom-client', feature: 'Prometheus metrics (the metrics option)', place: 'ConnectionHealthModule.forRoot()' },
  { which: 'openTelemetry', missing: '@opentelemetry/api', feature: 'OpenTelemetry (the openTelemetry option)', place: 'ConnectionHealthModule.forRoot()' },
];

describe('a client library that is not installed stops the bootstrap with the command that installs it', () => {
  const trees: PeerlessTree[] = [];
  after(() => trees.forEach((tree) => tree.remove()));

  for (const { which, missing, feature, place } of MISSING_PEERS) {
    it(`${which} without ${missing}`, async () => {
      const tree = new PeerlessTree([missing]);
      trees.push(tree);
      assert.deepEqual(await tree.run(which), {
        error: MissingDependencyError.name,
        message: `${place}: the "${missing}" package is required for ${feature} but is not installed. Run "npm install ${missing}" and try again.`,
      });
    });
  }

  it('nats without nats nor @nats-io/transport-node: either will do, and the message names both', async () => {
    const tree = new PeerlessTree(['nats', '@nats-io/transport-node']);
    trees.push(tree);
    assert.deepEqual(await tree.run('nats'), {
      error: MissingDependencyError.name,
      message:
        'Connection "events": the "nats" or the "@nats-io/transport-node" package is required for NATS connections but neither is installed. ' +
        'Run "npm install nats" or "npm install @nats-io/transport-node" and try again.',
    });
  });

  it("nats without nats (a Nest 12 app): the package's own connection is made by @nats-io/transport-node", async () => {
    const tree = new PeerlessTree(['nats']);
    trees.push(tree);
    assert.deepEqual(await tree.run('nats'), { started: true });
  });

  it("a nats.js 3.x connection handed in, without nats 2.x: watched and up, its side connection's library its own", async () => {
    const tree = new PeerlessTree(['nats']);
    trees.push(tree);
    assert.deepEqual(await tree.run('nats-3x-connection'), { started: true, up: true });
  });
});
