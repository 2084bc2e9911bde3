import type { AmqpConnectionDefinition } from '../adapters/amqp/amqp.kind.js';
import type { CustomConnectionDefinition } from '../adapters/custom/custom.kind.js';
import type { ImapConnectionDefinition } from '../adapters/imap/imap.kind.js';
import type { MicroserviceConnectionDefinition } from '../adapters/microservice/microservice.kind.js';
import type { MqttConnectionDefinition } from '../adapters/mqtt/mqtt.kind.js';
import type { NatsConnectionDefinition } from '../adapters/nats/nats.kind.js';
import type { RedisConnectionDefinition } from '../adapters/redis/redis.kind.js';
import type { StompConnectionDefinition } from '../adapters/stomp/stomp.kind.js';
import type { TcpConnectionDefinition } from '../adapters/tcp/tcp.kind.js';
import type { TypeOrmConnectionDefinition } from '../adapters/typeorm/typeorm.kind.js';

// Each kind's folder owns its definition; the module takes any of them.
export type { AmqpConnectionDefinition } from '../adapters/amqp/amqp.kind.js';
export type { CustomConnectionDefinition } from '../adapters/custom/custom.kind.js';
export type { ImapConnectionDefinition, ImapFlowConnectionDefinition, NodeImapConnectionDefinition } from '../adapters/imap/imap.kind.js';
export type { MicroserviceConnectionDefinition } from '../adapters/microservice/microservice.kind.js';
export type { MqttConnectionDefinition } from '../adapters/mqtt/mqtt.kind.js';
export type { NatsConnectionDefinition } from '../adapters/nats/nats.kind.js';
export type { RedisConnectionDefinition } from '../adapters/redis/redis.kind.js';
export type { StompConnectionDefinition } from '../adapters/stomp/stomp.kind.js';
export type { TcpConnectionDefinition } from '../adapters/tcp/tcp.kind.js';
export type { TypeOrmConnectionDefinition } from '../adapters/typeorm/typeorm.kind.js';

/**
 * One monitored connection, as given to ConnectionHealthModule.forRoot(): a definition of each kind of
 * lib/adapters/connection-kinds.ts. The build fails while the two differ (the orchestrator hands this union
 * to the table's dispatcher, the explorer takes the table's definitions as this union).
 */
export type ConnectionDefinition =
  | TypeOrmConnectionDefinition
  | TcpConnectionDefinition
  | CustomConnectionDefinition
  | ImapConnectionDefinition
  | StompConnectionDefinition
  | RedisConnectionDefinition
  | AmqpConnectionDefinition
  | MqttConnectionDefinition
  | NatsConnectionDefinition
  | MicroserviceConnectionDefinition;
