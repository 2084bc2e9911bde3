import { Redis } from 'ioredis';
import { RedisServer } from '../../test/kit/redis.server.js';
import { now } from '../kit/stats.js';
import type { DetectionKind, Noticed, RawLibrary, RawWatch } from './detection-kind.interface.js';

/** How often the waiting client runs PING, like an app that uses its connection now and then. */
const RAW_PING_EVERY_MS = 1_000;

type Usage = 'ping' | 'subscriber' | 'blpop';

/**
 * ioredis with its defaults (keepAlive 0 = the kernel's 2 h, no commandTimeout or socketTimeout, retries
 * min(n x 50, 2000) ms, maxRetriesPerRequest 20, autoResubscribe, autoResendUnfulfilledCommands), used one
 * of three ways. A report is any 'error', 'close' or 'end' event, or a rejected command.
 */
async function watchIoredis(usage: Usage, host: string, port: number): Promise<RawWatch> {
  let report!: (how: string) => void;
  const noticed = new Promise<Noticed>((resolve) => (report = (how) => resolve({ at: now(), how })));
  const client = new Redis({ host, port });
  const rejected = (error: Error) => report(`command rejected: ${error.message}`);
  await new Promise((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', reject);
  });
  client.on('error', (error: Error) => report(`'error' event: ${error.message}`));
  client.on('close', () => report(`'close' event`));
  client.on('end', () => report(`'end' event`));
  let timer: NodeJS.Timeout | undefined;
  if (usage === 'ping') timer = setInterval(() => client.ping().catch(rejected), RAW_PING_EVERY_MS);
  if (usage === 'subscriber') await client.subscribe(`bench.raw.${process.pid}`);
  if (usage === 'blpop') client.blpop(`bench.raw.${process.pid}.${Math.random()}`, 0).catch(rejected);
  return {
    noticed,
    close: async () => {
      clearInterval(timer);
      // disconnect() destroys the socket at once, also one a blackhole keeps silent; it rejects what is pending.
      client.disconnect();
    },
  };
}

const ioredis = (usage: Usage, name: string, description: string): RawLibrary => ({
  name,
  usage: description,
  watch: (host, port) => watchIoredis(usage, host, port),
});

/**
 * redis-server 7.0 from the test kit. Only the raw client's baseline so far: no `connection`, so the harness
 * runs no package trials for it until the Redis kind exists.
 */
export const redisIoredisKind: DetectionKind = {
  label: 'redis-server 7.0 · ioredis',
  server: 'redis-server 7.0',
  startServer: () => RedisServer.start(),
  raw: [
    ioredis('ping', 'ioredis', `PING every ${RAW_PING_EVERY_MS} ms, no timeout set`),
    ioredis('subscriber', 'ioredis (SUBSCRIBE)', 'subscribed to a channel, waiting for messages'),
    ioredis('blpop', 'ioredis (BLPOP)', 'blocked in BLPOP with timeout 0'),
  ],
};
