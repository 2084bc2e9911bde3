import amqp from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { connect as connectManager, type AmqpConnectionManager, type ChannelWrapper } from 'amqp-connection-manager';
import { setTimeout as sleep } from 'node:timers/promises';
import { RabbitMqServer } from '../../test/kit/rabbitmq.server.js';
import { now } from '../kit/stats.js';
import type { DetectionKind, FaultServer, Noticed, RawWatch } from './detection-kind.interface.js';

/** The kit's broker seen through its AMQP listener: the harness reaches `host:port`, so `port` is the AMQP one. */
class AmqpBroker implements FaultServer {
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

/**
 * RabbitMQ 3.10 from the test kit over AMQP 0-9-1. No `connection` yet: the package has no AMQP adapter, so only
 * the raw clients' baseline runs. The server's own kick is `rabbitmqctl close_all_connections` (close_connection on
 * each: connection.close 320 CONNECTION_FORCED, then FIN); its figures include rabbitmqctl's own start-up.
 */
export const rabbitMqAmqpKind: DetectionKind<AmqpBroker> = {
  label: 'RabbitMQ 3.10 · amqp',
  server: 'RabbitMQ 3.10 (AMQP 0-9-1)',
  startServer: () => AmqpBroker.start(),
  raw: [
    { name: 'amqplib', usage: 'one channel consuming from its queue, heartbeat as negotiated (RabbitMQ suggests 60 s)', watch: watchAmqplib },
    {
      name: 'amqp-connection-manager',
      usage: 'a ChannelWrapper consuming from its queue, heartbeatIntervalInSeconds 5, reconnectTimeInSeconds 5',
      watch: watchConnectionManager,
    },
  ],
  // One rabbitmqctl run for all clients (it calls close_connection on each): twenty runs side by side, one per
  // connection, took 11 to 17 s on 2 cores, which the figures would have counted as the clients' delay.
  kick: { how: 'rabbitmqctl close_all_connections', run: (broker) => broker.rabbit.closeAllConnections('bench kick') },
};
