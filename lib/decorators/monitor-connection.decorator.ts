import { MONITORED_CONNECTIONS } from '../connection-health.constants.js';
import type { TypeOrmConnectionDefinition } from '../interfaces/connection-definition.interface.js';

/** What @MonitorConnection takes: a connection definition without the connection, which is the member. */
export type MonitorConnectionOptions = Omit<TypeOrmConnectionDefinition, 'dataSource'>;

/** @internal */
export interface MonitoredMember {
  readonly propertyKey: string | symbol;
  readonly options: MonitorConnectionOptions;
}

/**
 * Marks a provider's connection as monitored under `options.name`. On a property or getter, its value at
 * bootstrap is the connection (a TypeORM DataSource); on a method, the method is called once at bootstrap
 * and returns it. The provider must be a singleton.
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
