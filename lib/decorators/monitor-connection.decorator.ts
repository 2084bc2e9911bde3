import { MONITORED_CONNECTIONS } from '../connection-health.constants.js';
import type {
  AmqpConnectionDefinition,
  MicroserviceConnectionDefinition,
  ImapFlowConnectionDefinition,
  MqttConnectionDefinition,
  NatsConnectionDefinition,
  NodeImapConnectionDefinition,
  RedisConnectionDefinition,
  StompConnectionDefinition,
  TypeOrmConnectionDefinition,
} from '../interfaces/connection-definition.interface.js';

/** What @MonitorConnection takes: a connection definition without what the decorated member provides. */
export type MonitorConnectionOptions =
  | Omit<TypeOrmConnectionDefinition, 'dataSource'>
  | Omit<ImapFlowConnectionDefinition, 'factory'>
  | Omit<NodeImapConnectionDefinition, 'factory'>
  | StompConnectionDefinition
  | Omit<RedisConnectionDefinition, 'client' | 'url' | 'redisOptions'>
  | Omit<AmqpConnectionDefinition, 'connection' | 'url' | 'socketOptions'>
  | Omit<MqttConnectionDefinition, 'client' | 'url' | 'mqttOptions'>
  | Omit<NatsConnectionDefinition, 'connection' | 'servers' | 'natsOptions'>
  | Omit<MicroserviceConnectionDefinition, 'client'>;

/** @internal */
export interface MonitoredMember {
  readonly propertyKey: string | symbol;
  readonly options: MonitorConnectionOptions;
}

/**
 * Marks a provider's connection as monitored under `options.name`. The provider must be a singleton.
 * - `typeorm`: a property or getter holds the DataSource, or a method (called once at bootstrap) returns it.
 * - `imap`: a method is the client factory, called for every session (an ImapFlow cannot connect twice);
 *   a property is kept pointing at the live client, which the package creates from the options.
 * - `stomp`: a property is kept pointing at the live @stomp/stompjs Client, which the package creates.
 * - `redis`: a property or getter holds the app's ioredis client, or a method (called once at bootstrap)
 *   returns it; the package watches it and never closes it.
 * - `amqp`: the same, with the app's amqplib connection, amqp-connection-manager or recovering model.
 * - `mqtt`: the same, with the app's MQTT.js client.
 * - `nats`: the same, with the app's nats.js connection.
 * - `microservice`: the same, with the app's Nest ClientProxy (RMQ, Redis, MQTT or NATS transport).
 *
 * @example
 * ```ts
 * @Injectable()
 * export class OrdersStore {
 *   @MonitorConnection({ name: 'orders-db', kind: 'typeorm', heartbeat: { intervalMs: 10_000 } })
 *   readonly dataSource: DataSource;
 *   constructor(@InjectDataSource('orders') dataSource: DataSource) { this.dataSource = dataSource; }
 * }
 * ```
 */
export function MonitorConnection(options: MonitorConnectionOptions): PropertyDecorator & MethodDecorator {
  return (target: object, propertyKey: string | symbol) => {
    const inherited: MonitoredMember[] = Reflect.getMetadata(MONITORED_CONNECTIONS, target.constructor) ?? [];
    Reflect.defineMetadata(MONITORED_CONNECTIONS, [...inherited, { propertyKey, options }], target.constructor);
  };
}
