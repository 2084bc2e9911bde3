import { Redis } from 'ioredis';
import { RedisServer } from '../../test/kit/redis.server.js';
import { now } from '../kit/stats.js';
import type { DetectionKind, MonitoredConnection, Noticed, RawWatch } from './detection-kind.interface.js';

/** How often the waiting client runs PING, like an app that uses its connection now and then. */
const RAW_PING_EVERY_MS = 1_000;

type Usage = 'ping' | 'subscriber' | 'blpop';

/** An ioredis client with its defaults, once it is ready. */
async function readyClient(host: string, port: number): Promise<Redis> {
  const client = new Redis({ host, port });
  await new Promise((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', reject);
  });
  return client;
}

/** Puts a ready client to work one of three ways; `rejected` hears of a failed command. Returns what stops it. */
async function use(client: Redis, usage: Usage, rejected: (error: Error) => void): Promise<() => void> {
  let timer: NodeJS.Timeout | undefined;
  if (usage === 'ping') timer = setInterval(() => client.ping().catch(rejected), RAW_PING_EVERY_MS);
  if (usage === 'subscriber') await client.subscribe(`bench.${process.pid}.${Math.random()}`);
  if (usage === 'blpop') client.blpop(`bench.${process.pid}.${Math.random()}`, 0).catch(rejected);
  return () => clearInterval(timer);
}

/**
 * ioredis with its defaults (keepAlive 0 = the kernel's 2 h, no commandTimeout or socketTimeout, retries
 * min(n x 50, 2000) ms, maxRetriesPerRequest 20, autoResubscribe, autoResendUnfulfilledCommands), used one
 * of three ways. A report is any 'error', 'close' or 'end' event, or a rejected command.
 */
async function watchIoredis(usage: Usage, host: string, port: number): Promise<RawWatch> {
  let report!: (how: string) => void;
  const noticed = new Promise<Noticed>((resolve) => (report = (how) => resolve({ at: now(), how })));
  const client = await readyClient(host, port);
  client.on('error', (error: Error) => report(`'error' event: ${error.message}`));
  client.on('close', () => report(`'close' event`));
  client.on('end', () => report(`'end' event`));
  const stop = await use(client, usage, (error) => report(`command rejected: ${error.message}`));
  return {
    noticed,
    close: async () => {
      stop();
      // disconnect() destroys the socket at once, also one a blackhole keeps silent; it rejects what is pending.
      client.disconnect();
    },
  };
}

/**
 * The app's own ioredis client (defaults, so its retryStrategy reconnects it), put to work like the raw
 * one and watched by the package (`client:`); the trial ends it, as the package leaves a watched client open.
 */
async function watchedConnection(usage: Usage, host: string, port: number): Promise<MonitoredConnection> {
  const client = await readyClient(host, port);
  // An app listens to its client's errors (ioredis prints them otherwise); the package keeps its own reason.
  client.on('error', () => undefined);
  const stop = await use(client, usage, () => undefined);
  return {
    definition: { name: 'cache', kind: 'redis', client },
    dispose: async () => {
      stop();
      client.disconnect();
    },
  };
}

/**
 * redis-server 7.0 from the test kit, one kind per way the app uses its client, so the table shows an idle
 * client, a subscriber and one blocked in BLPOP side by side. The server's own kick is CLIENT KILL (every
 * normal and pubsub client: a FIN, no reply).
 */
function redisKind(usage: Usage, shown: string, description: string): DetectionKind<RedisServer> {
  return {
    label: `redis-server 7.0 · ${shown}`,
    server: 'redis-server 7.0',
    startServer: () => RedisServer.start(),
    connection: (host, port) => watchedConnection(usage, host, port),
    raw: [{ name: shown, usage: description, watch: (host, port) => watchIoredis(usage, host, port) }],
    kick: { how: 'CLIENT KILL', run: (server) => server.clientKill() },
  };
}

export const redisIoredisKind = redisKind('ping', 'ioredis', `PING every ${RAW_PING_EVERY_MS} ms, no timeout set`);
export const redisIoredisSubscriberKind = redisKind('subscriber', 'ioredis (SUBSCRIBE)', 'subscribed to a channel, waiting for messages');
export const redisIoredisBlpopKind = redisKind('blpop', 'ioredis (BLPOP)', 'blocked in BLPOP with timeout 0');
