import { connect, DebugEvents, Events, type NatsConnection } from 'nats';
import { NatsServer } from '../../test/kit/nats.server.js';
import { now } from '../kit/stats.js';
import type { DetectionKind, Noticed, RawWatch } from './detection-kind.interface.js';

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

/**
 * nats-server 2.9 from the test kit. The package has no NATS adapter yet: only the raw client's baseline
 * runs. 2.9 has no kick request, so the kick is the kit's: a reload that revokes every client's credentials
 * (the server closes them with a FIN) and a second one that gives them back.
 */
export const natsKind: DetectionKind<NatsServer> = {
  label: 'nats-server 2.9 · nats',
  server: 'nats-server 2.9',
  startServer: () => NatsServer.start(),
  raw: [{ name: 'nats', usage: 'subscribed to a subject, waiting for messages', watch: watchNats }],
  kick: {
    how: 'auth revoked by reload',
    // From the SIGHUP, not from the kit's /connz read before it.
    run: async (server) => {
      let reachedAt: number | undefined;
      await server.kick(undefined, () => (reachedAt = now()));
      return { reachedAt };
    },
  },
};
