import { amqpKind } from './amqp/amqp.kind.js';
import type { ConnectionKindSpec } from './connection-kind.js';
import { customKind } from './custom/custom.kind.js';
import { imapKind } from './imap/imap.kind.js';
import { microserviceKind } from './microservice/microservice.kind.js';
import { mqttKind } from './mqtt/mqtt.kind.js';
import { natsKind } from './nats/nats.kind.js';
import { redisKind } from './redis/redis.kind.js';
import { stompKind } from './stomp/stomp.kind.js';
import { tcpKind } from './tcp/tcp.kind.js';
import { typeormKind } from './typeorm/typeorm.kind.js';

/**
 * Every kind of connection the package knows, in the order messages list them. Adding a kind is a folder
 * lib/adapters/<kind>/ exporting its ConnectionKindSpec, and its line here; the dispatcher reads nothing else.
 */
export const CONNECTION_KINDS = [typeormKind, tcpKind, customKind, imapKind, stompKind, redisKind, amqpKind, mqttKind, natsKind, microserviceKind] as const;

/** The definition of any kind of the table: what createAdapter() takes. */
export type KindDefinition = (typeof CONNECTION_KINDS)[number] extends infer S ? (S extends ConnectionKindSpec<infer D, never> ? D : never) : never;
export type ConnectionKind = KindDefinition['kind'];
