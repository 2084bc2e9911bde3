import { Logger, Module } from '@nestjs/common';
import { ClientsModule, Transport } from '@nestjs/microservices';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ConnectionHealthModule } from 'nestjs-connection-health';
import { DataSource } from 'typeorm';
import { JobsWorker } from './jobs.worker.js';
import { NotificationsPublisher } from './notifications.publisher.js';

const stompLogger = new Logger('Broker');
const ordersLogger = new Logger('Orders');
const devicesLogger = new Logger('Devices');
const eventsLogger = new Logger('Events');

// SQLite in memory by default, so the sample runs anywhere; DATABASE_URL=postgres://... monitors PostgreSQL.
const database = process.env.DATABASE_URL
  ? ({ type: 'postgres', url: process.env.DATABASE_URL } as const)
  : ({ type: 'sqljs' } as const);

@Module({
  imports: [
    ScheduleModule.forRoot(), // optional: lists the heartbeat timers beside the app's own jobs
    TypeOrmModule.forRoot(database),
    // The app's own Nest microservice client, monitored by NotificationsPublisher ('notifications').
    ClientsModule.register([{ name: 'NOTIFICATIONS', transport: Transport.NATS, options: { servers: [process.env.NATS_URL ?? 'nats://127.0.0.1:4222'] } }]),
    // Serves /health (Docker's HEALTHCHECK), /health/live, /health/ready and /health/startup.
    ConnectionHealthModule.forRoot({
      connections: [
        {
          name: 'database',
          kind: 'typeorm',
          dataSource: DataSource, // the token TypeOrmModule registers
          heartbeat: { intervalMs: Number(process.env.HEARTBEAT_INTERVAL_MS ?? 15_000), timeoutMs: 3_000 },
          reconnect: { maxAttempts: Infinity },
        },
        {
          // IDLEs in INBOX between beats; `npm run dovecot` serves test/test on 127.0.0.1:11143.
          name: 'mail',
          kind: 'imap',
          client: 'imapflow',
          host: process.env.IMAP_HOST ?? '127.0.0.1',
          port: Number(process.env.IMAP_PORT ?? 11143),
          auth: { user: process.env.IMAP_USER ?? 'test', pass: process.env.IMAP_PASSWORD ?? 'test' },
          required: false, // without a mail server the sample still serves: /health reads degraded, HTTP 200
          reconnect: { maxAttempts: Infinity },
        },
        {
          // A STOMP session (ActiveMQ, RabbitMQ's STOMP plugin, ...): each heartbeat is a message round trip
          // through the broker; the subscription below is made again after every reconnect.
          name: 'broker',
          kind: 'stomp',
          ...(process.env.STOMP_URL
            ? { url: process.env.STOMP_URL }
            : { host: process.env.STOMP_HOST ?? '127.0.0.1', port: Number(process.env.STOMP_PORT ?? 61613) }),
          login: process.env.STOMP_LOGIN,
          passcode: process.env.STOMP_PASSCODE,
          subscriptions: [
            {
              destination: process.env.STOMP_QUEUE ?? '/queue/sample',
              headers: { ack: 'client-individual' },
              onMessage: (message) => {
                stompLogger.log(`message on ${message.headers.destination}: ${message.body}`);
                message.ack();
              },
            },
          ],
          required: false, // without a broker the sample still serves: /health reads degraded, HTTP 200
          reconnect: { maxAttempts: Infinity },
        },
        {
          // An AMQP connection of the package's own (RabbitMQ), with a consumer made again on every new
          // connection; a consumer the broker cancels (its queue deleted) reads degraded until it is back.
          name: 'orders',
          kind: 'amqp',
          url: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
          // A password sent without TLS to another host is warned of at bootstrap; compose's network is private.
          allowInsecureAuth: process.env.AMQP_ALLOW_INSECURE_AUTH === 'true' ? true : undefined,
          consumers: [
            {
              queue: process.env.AMQP_QUEUE ?? 'sample.orders',
              assert: { durable: true },
              prefetch: 10,
              // Acknowledged once it returns; one that throws is logged and its message requeued a second later.
              onMessage: (message) => ordersLogger.log(`order from ${message.fields.routingKey}: ${message.content.toString()}`),
            },
          ],
          required: false,
          reconnect: { maxAttempts: Infinity },
        },
        {
          // An MQTT client of the package's own (mosquitto), its subscription kept through reconnects. Its
          // beats go to $connection-health/<clientId>, which nothing subscribes to, not even a '#' filter.
          name: 'devices',
          kind: 'mqtt',
          url: process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883',
          allowInsecureAuth: process.env.MQTT_ALLOW_INSECURE_AUTH === 'true' ? true : undefined,
          subscriptions: [
            {
              topic: process.env.MQTT_TOPIC ?? 'sample/devices/#',
              qos: 1,
              // MQTT has no NACK: a message whose handler throws is logged, and not delivered again.
              onMessage: (message) => devicesLogger.log(`message on ${message.topic}: ${message.payload.toString()}`),
            },
          ],
          required: false,
          reconnect: { maxAttempts: Infinity },
        },
        {
          // A NATS connection of the package's own (nats-server), made anew after every loss with its
          // subscription: core NATS delivers at most once, so a message published while it is down is lost.
          name: 'events',
          kind: 'nats',
          servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
          allowInsecureAuth: process.env.NATS_ALLOW_INSECURE_AUTH === 'true' ? true : undefined,
          subscriptions: [
            {
              subject: process.env.NATS_SUBJECT ?? 'sample.events.>',
              // A handler that throws is logged; the message is not delivered again.
              onMessage: (message) => eventsLogger.log(`event on ${message.subject}: ${message.string()}`),
            },
          ],
          required: false,
          reconnect: { maxAttempts: Infinity },
        },
      ],
      // In Kubernetes, DRAIN_DELAY_MS=5000 lets endpoints drop the pod before connections close.
      shutdown: { drainDelayMs: Number(process.env.DRAIN_DELAY_MS ?? 0), timeoutMs: 10_000 },
      // The live status page at /health/ui. HEALTH_DETAILS=full adds each connection's target, state and
      // reasons to the bodies and the page (scrubbed of secrets, but they tell the app's topology): for a
      // port only operators reach. Default: status only.
      healthController: { ui: true, ...(process.env.HEALTH_DETAILS === 'full' ? { details: 'full' as const } : {}) },
      // DEAD_MAN_MS: exit after the database has been down that long, so Docker restarts the container.
      ...(process.env.DEAD_MAN_MS ? { deadMan: { downForMs: Number(process.env.DEAD_MAN_MS), exitCode: 1 } } : {}),
    }),
  ],
  // Their Redis client ('jobs') and ClientProxy ('notifications') are monitored through @MonitorConnection: the
  // app's own, watched, never closed by the package.
  providers: [JobsWorker, NotificationsPublisher],
})
export class AppModule {}
