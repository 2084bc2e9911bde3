import amqp from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { connect as connectManager, type AmqpConnectionManager, type ChannelWrapper } from 'amqp-connection-manager';
import { setTimeout as sleep } from 'node:timers/promises';
import { RabbitMqServer } from '../../test/kit/rabbitmq.server.js';
import { ms, now } from '../kit/stats.js';
import type { AmqpConnectionDefinition } from '../../lib/index.js';
import type { DetectionKind, FaultServer, MonitoredConnection, Noticed, RawWatch } from './detection-kind.interface.js';

/** The kit's broker seen through its AMQP listener: the harness reaches `host:port`, so `port` is the AMQP one. */
export class AmqpBroker implements FaultServer {
  readonly host: string;
  readonly port: number;

  constructor(readonly rabbit: RabbitMqServer) {
    this.host = rabbit.host;
    this.port = rabbit.amqpPort;
  }

  static async start(): Promise<AmqpBroker> {
    return new AmqpBroker(await RabbitMqServer.start());
  }

  kill(): Promise<void> {
    return this.rabbit.kill();
  }

  startAgain(): Promise<void> {
    return this.rabbit.startAgain();
  }

  stop(): Promise<void> {
    return this.rabbit.stop();
  }
}

const url = (host: string, port: number) => `amqp://guest:guest@${host}:${port}`;
/** A queue of the client's own: named, so a consumer re-made on a new connection finds it again. */
const queueName = () => `bench.${process.pid}.${Math.random().toString(36).slice(2)}`;

/**
 * Destroys the socket under an amqplib connection, for a close a silent broker would never answer. With an error,
 * so amqplib runs its socket-error path, which also stops its heartbeat timers (a bare destroy() leaves them
 * running until they time out, two to three heartbeat intervals later, keeping the process alive).
 */
function destroySocket(model: ChannelModel | undefined): void {
  (model?.connection as unknown as { stream?: { destroy(error: Error): void } } | undefined)?.stream?.destroy(new Error('closed by the bench'));
}

/**
 * amqplib with its defaults (heartbeat as the server suggests: RabbitMQ's 60 s, so a silent peer is seen after
 * two to three intervals; no socket timeout or keepalive), one channel consuming from a queue of its own. A
 * report is a connection or channel 'error' or 'close', or the consumer's null message (basic.cancel).
 */
async function watchAmqplib(host: string, port: number): Promise<RawWatch> {
  let report!: (how: string) => void;
  const noticed = new Promise<Noticed>((resolve) => (report = (how) => resolve({ at: now(), how })));
  const model = await amqp.connect(url(host, port));
  model.on('error', (error: Error) => report(`connection 'error': ${error.message}`));
  model.on('close', (error?: Error) => report(`connection 'close'${error ? `: ${error.message}` : ''}`));
  const channel = await model.createChannel();
  channel.on('error', (error: Error) => report(`channel 'error': ${error.message}`));
  channel.on('close', () => report(`channel 'close'`));
  const queue = queueName();
  await channel.assertQueue(queue, { autoDelete: true });
  await channel.consume(queue, (message) => message === null && report('consumer cancelled (null message)'), { noAck: true });
  return {
    noticed,
    close: async () => {
      // close() waits for close-ok, which a blackholed broker never sends.
      await Promise.race([model.close().catch(() => undefined), sleep(1_000)]);
      destroySocket(model);
    },
  };
}

/**
 * amqp-connection-manager with its defaults (heartbeatIntervalInSeconds 5, reconnectTimeInSeconds 5, no connect
 * timeout), a ChannelWrapper (confirm channel) whose setup declares the queue and a `consume` on it, which the
 * wrapper re-makes on every new channel. A report is the manager's 'disconnect' or 'connectFailed' or the
 * wrapper's 'error' or 'close'.
 */
async function watchConnectionManager(host: string, port: number): Promise<RawWatch> {
  let report!: (how: string) => void;
  const noticed = new Promise<Noticed>((resolve) => (report = (how) => resolve({ at: now(), how })));
  const manager: AmqpConnectionManager = connectManager([url(host, port)]);
  manager.on('disconnect', ({ err }: { err?: Error }) => report(`manager 'disconnect': ${err?.message ?? '(no error)'}`));
  manager.on('connectFailed', ({ err }: { err?: Error }) => report(`manager 'connectFailed': ${err?.message ?? ''}`));
  const queue = queueName();
  const wrapper: ChannelWrapper = manager.createChannel({ setup: (channel: amqp.ConfirmChannel) => channel.assertQueue(queue, { autoDelete: true }) });
  wrapper.on('error', (error: Error) => report(`wrapper 'error': ${error.message}`));
  wrapper.on('close', () => report(`wrapper 'close'`));
  await wrapper.waitForConnect();
  await wrapper.consume(queue, () => undefined, { noAck: true });
  return {
    noticed,
    close: async () => {
      const live = manager.connection as ChannelModel | undefined;
      await Promise.race([manager.close().catch(() => undefined), sleep(1_000)]);
      destroySocket(live);
    },
  };
}

/** The app's reconnect wait of the handed-in ACM manager and recovering model, and their AMQP heartbeat: 1 s. */
const APP_RECONNECT_S = 1;

/** Ends the handed-in client of a trial: close() waits for close-ok, which a blackholed broker never sends. */
async function closeForced(close: () => Promise<unknown>, live: ChannelModel | undefined): Promise<void> {
  await Promise.race([close().catch(() => undefined), sleep(1_000)]);
  destroySocket(live);
}

/**
 * The package's own connection (`url`: it connects, and reconnects on the engine's backoff) with one consumer
 * of the app's on a queue the package declares on every connection (`assert`); onMessage resolves, so each
 * message is acked.
 */
function ownConnection(host: string, port: number): MonitoredConnection {
  return {
    definition: {
      name: 'orders',
      kind: 'amqp',
      url: url(host, port),
      consumers: [{ queue: queueName(), assert: { durable: false, autoDelete: true }, onMessage: () => undefined }],
    } satisfies AmqpConnectionDefinition,
  };
}

/**
 * The app's amqp-connection-manager (heartbeatIntervalInSeconds and reconnectTimeInSeconds 1, not its 5 s
 * defaults: 'up again' waits for the app's manager), consuming through a ChannelWrapper of its own as the raw
 * one does, handed in as `connection`: the package watches it and opens its beat channel on it.
 */
async function watchedManager(host: string, port: number): Promise<MonitoredConnection> {
  const manager: AmqpConnectionManager = connectManager([url(host, port)], {
    heartbeatIntervalInSeconds: APP_RECONNECT_S,
    reconnectTimeInSeconds: APP_RECONNECT_S,
  });
  const queue = queueName();
  const wrapper: ChannelWrapper = manager.createChannel({ setup: (channel: amqp.ConfirmChannel) => channel.assertQueue(queue, { autoDelete: true }) });
  // An app listens to its wrapper's errors (an unheard 'error' event throws).
  wrapper.on('error', () => undefined);
  await wrapper.waitForConnect();
  await wrapper.consume(queue, () => undefined, { noAck: true });
  return {
    definition: { name: 'orders', kind: 'amqp', connection: manager } satisfies AmqpConnectionDefinition,
    dispose: () => closeForced(() => manager.close(), manager.connection as ChannelModel | undefined),
  };
}

/**
 * The app's amqplib 2 recovering model (`recovery` with maxDelay 1 s instead of 30 s, heartbeat=1 in the url
 * instead of the server's 60 s: 'up again' waits for the app's model), whose setup consumes from a queue of
 * the app's on every connection, handed in as `connection`.
 */
async function watchedRecoveringModel(host: string, port: number): Promise<MonitoredConnection> {
  const queue = queueName();
  let live: ChannelModel | undefined;
  const model = await amqp.connect(`${url(host, port)}?heartbeat=${APP_RECONNECT_S}`, {
    recovery: {
      maxDelay: APP_RECONNECT_S * 1_000,
      setup: async (current: ChannelModel) => {
        live = current;
        const channel = await current.createChannel();
        channel.on('error', () => undefined);
        await channel.assertQueue(queue, { autoDelete: true });
        await channel.consume(queue, () => undefined, { noAck: true });
      },
    },
  });
  // The model re-emits its connection's 'error': an app listens, or an unheard one throws.
  model.on('error', () => undefined);
  return {
    definition: { name: 'orders', kind: 'amqp', connection: model } satisfies AmqpConnectionDefinition,
    dispose: () => closeForced(() => model.close(), live),
  };
}

/**
 * RabbitMQ 3.10 from the test kit over AMQP 0-9-1, one kind per way the package gets its connection: its own
 * (`url`, with a consumer), an app's amqp-connection-manager, an app's amqplib 2 recovering model. The raw
 * clients' baseline runs once, with the first. The server's own kick is `rabbitmqctl close_all_connections`
 * (close_connection on each: connection.close 320 CONNECTION_FORCED, then FIN), counted from the moment it
 * reached the clients (see timedKick).
 */
function amqpKind(shown: string, connection: DetectionKind<AmqpBroker>['connection'], raw: DetectionKind['raw'] = []): DetectionKind<AmqpBroker> {
  return {
    label: `RabbitMQ 3.10 · ${shown}`,
    server: 'RabbitMQ 3.10 (AMQP 0-9-1)',
    startServer: () => AmqpBroker.start(),
    connection,
    raw,
    // One rabbitmqctl run for all clients (it calls close_connection on each): twenty runs side by side, one per
    // connection, took 11 to 17 s on 2 cores, which the figures would have counted as the clients' delay.
    kick: { how: 'rabbitmqctl close_all_connections', run: timedKick },
  };
}

/**
 * The kick, counted from the moment it reached the clients: the broker's close of a connection of the bench's
 * own, opened straight to the broker for it. rabbitmqctl first starts an Erlang VM (0.8 to 3.5 s on a busy
 * 2-core machine), which would otherwise count as the package's delay; close_all_connections then closes every
 * connection within a few ms, the bench's among them. How long rabbitmqctl took goes to stderr.
 */
export async function timedKick(broker: AmqpBroker): Promise<{ reachedAt: number } | undefined> {
  const witness = await amqp.connect(url(broker.host, broker.port));
  witness.on('error', () => undefined);
  const reached = new Promise<number>((resolve) => witness.on('close', () => resolve(now())));
  const started = now();
  await broker.rabbit.closeAllConnections('bench kick');
  const reachedAt = await Promise.race([reached, sleep(5_000).then(() => undefined)]);
  console.error(`    rabbitmqctl close_all_connections took ${ms(now() - started)} ms, reached the clients after ${reachedAt === undefined ? '-' : ms(reachedAt - started)} ms`);
  if (reachedAt === undefined) destroySocket(witness);
  return reachedAt === undefined ? undefined : { reachedAt };
}

export const rabbitMqAmqpKind = amqpKind('amqplib (url, consumer)', ownConnection, [
  { name: 'amqplib', usage: 'one channel consuming from its queue, heartbeat as negotiated (RabbitMQ suggests 60 s)', watch: watchAmqplib },
  {
    name: 'amqp-connection-manager',
    usage: 'a ChannelWrapper consuming from its queue, heartbeatIntervalInSeconds 5, reconnectTimeInSeconds 5',
    watch: watchConnectionManager,
  },
]);
export const rabbitMqConnectionManagerKind = amqpKind(`amqp-connection-manager (handed in, heartbeat and reconnect ${APP_RECONNECT_S} s)`, watchedManager);
export const rabbitMqRecoveringModelKind = amqpKind(`amqplib recovery (handed in, heartbeat ${APP_RECONNECT_S} s, maxDelay ${APP_RECONNECT_S} s)`, watchedRecoveringModel);
