import { connect, DebugEvents, Events, type NatsConnection } from 'nats';
import { NatsServer } from '../../test/kit/nats.server.js';
import { now } from '../kit/stats.js';
import type { NatsConnectionDefinition } from '../../lib/index.js';
import type { DetectionKind, MonitoredConnection, Noticed, RawWatch } from './detection-kind.interface.js';

/** The status events that report a loss; `pingTimer` (a PING sent) and `update` (cluster news) do not. */
const LOSS_EVENTS: ReadonlySet<string> = new Set([Events.Disconnect, Events.Error, Events.LDM, DebugEvents.StaleConnection]);

/**
 * `nats` 2.x with its defaults (pingInterval 2 min, maxPingOut 2, reconnect every 2 s + up to 100 ms jitter,
 * 10 attempts, no socket keepalive), subscribed and waiting for messages. A report is the first loss status
 * event (disconnect, staleConnection, ldm, error) or closed() settling.
 */
async function watchNats(host: string, port: number): Promise<RawWatch> {
  let report!: (how: string) => void;
  const noticed = new Promise<Noticed>((resolve) => (report = (how) => resolve({ at: now(), how })));
  const client: NatsConnection = await connect({ servers: `nats://${host}:${port}` });
  void (async () => {
    for await (const status of client.status()) {
      if (LOSS_EVENTS.has(status.type)) report(`status '${status.type}'${status.type === Events.Error ? ` ${String(status.data)}` : ''}`);
    }
  })();
  void client.closed().then((error) => report(`closed()${error ? `: ${error.message}` : ''}`));
  client.subscribe(`bench.${process.pid}.${Math.random()}`);
  await client.flush();
  return {
    noticed,
    // close() waits for nothing from the server: it destroys the socket, also one a blackhole keeps silent.
    close: () => client.close(),
  };
}

const subjectOfItsOwn = () => `bench.${process.pid}.${Math.random().toString(36).slice(2)}`;

/** The package's own connections (`servers`: a new one per attempt, on the engine's backoff), with one subscription of the app's. */
function ownConnection(host: string, port: number): MonitoredConnection {
  return {
    definition: {
      name: 'events',
      kind: 'nats',
      servers: `nats://${host}:${port}`,
      subscriptions: [{ subject: subjectOfItsOwn(), onMessage: () => undefined }],
    } satisfies NatsConnectionDefinition,
  };
}

/**
 * The app's connection, subscribed itself, handed in as `connection`: reconnectTimeWait 1 s (not 2 s) and
 * never giving up (maxReconnectAttempts -1, not 10), and a 1 s handshake timeout instead of 20 s, since 'up
 * again' waits for the app's connection, whose dial into the blackhole is answered by nothing but that timeout.
 */
async function watchedConnection(host: string, port: number): Promise<MonitoredConnection> {
  const connection = await connect({ servers: `nats://${host}:${port}`, reconnectTimeWait: 1_000, maxReconnectAttempts: -1, timeout: 1_000 });
  connection.subscribe(subjectOfItsOwn());
  await connection.flush();
  return {
    definition: { name: 'events', kind: 'nats', connection } satisfies NatsConnectionDefinition,
    dispose: () => connection.close(),
  };
}

/**
 * nats-server 2.9 from the test kit, one kind per way the package gets its connection: its own (`servers`,
 * with a subscription), an app's nats.js connection. The raw client's baseline runs once, with the first.
 * 2.9 has no kick request, so the kick is the kit's: a reload that revokes every client's credentials (the
 * server closes them with a FIN) and a second one that gives them back.
 */
function natsKindOf(shown: string, connection: DetectionKind<NatsServer>['connection'], raw: DetectionKind['raw'] = []): DetectionKind<NatsServer> {
  return {
    label: `nats-server 2.9 · ${shown}`,
    server: 'nats-server 2.9',
    startServer: () => NatsServer.start(),
    connection,
    raw,
    kick: natsKick,
  };
}

/** The kit's kick of every client, timed from the reload's signal. */
export const natsKick: DetectionKind<NatsServer>['kick'] = {
  how: 'auth revoked by reload',
  run: async (server) => {
    let reachedAt: number | undefined;
    await server.kick(undefined, () => (reachedAt = now()));
    return { reachedAt };
  },
};

export const natsKind = natsKindOf('nats (servers, subscription)', ownConnection, [
  { name: 'nats', usage: 'subscribed to a subject, waiting for messages', watch: watchNats },
]);
export const natsWatchedKind = natsKindOf("nats (the app's connection)", watchedConnection);
