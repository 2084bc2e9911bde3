import type { DataSourceLike } from './data-source-like.js';

/** The connection options of a data source: typeorm's DataSourceOptions, as far as the package reads them. */
type ConnectionOptions = DataSourceLike['options'];

/** One round trip to the database of a data source. */
export type Ping = (dataSource: DataSourceLike) => Promise<unknown>;

/**
 * Drivers whose database lives in the process (a file or memory): no server to lose, no pool of sockets to
 * saturate, so the data source itself is pinged.
 */
const IN_PROCESS = new Set(['sqlite', 'better-sqlite3', 'sqljs', 'capacitor', 'cordova', 'expo', 'nativescript', 'react-native']);

/** Drivers whose pool is a pg.Pool. */
const PG_POOLS = new Set(['postgres', 'cockroachdb']);

export function hasServer(dataSource: DataSourceLike): boolean {
  return !IN_PROCESS.has(dataSource.options.type);
}

export function usesPgPool(dataSource: DataSourceLike): boolean {
  return PG_POOLS.has(dataSource.options.type);
}

/** The driver's cheapest round trip, or the user's own query. */
export function pingFor(type: string, pingQuery?: string): Ping {
  if (pingQuery !== undefined) return (dataSource) => dataSource.query(pingQuery);
  switch (type) {
    case 'oracle':
      return (dataSource) => dataSource.query('SELECT 1 FROM DUAL');
    case 'sap':
      return (dataSource) => dataSource.query('SELECT 1 FROM DUMMY');
    case 'mongodb':
      // MongoDB has no SQL: its driver exposes the client, whose ping command is the round trip.
      return (dataSource) => {
        const driver = dataSource.driver as { queryRunner?: { databaseConnection?: MongoLike } };
        const client = driver.queryRunner?.databaseConnection;
        if (!client) return Promise.reject(new Error('MongoDB client is not connected'));
        return client.db().command({ ping: 1 });
      };
    default:
      return (dataSource) => dataSource.query('SELECT 1');
  }
}

interface MongoLike {
  db(): { command(command: object): Promise<unknown> };
}

/** The pg.Pool inside TypeORM's PostgreSQL and CockroachDB drivers: its public counters, and its clients for a forced close. */
export interface PgPoolLike {
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
  readonly options: { max: number };
  connect(): Promise<{ release(): void }>;
  _clients?: Array<{ connection?: { stream?: { destroy(): void } } }>;
}

/** The (master) pool of a PostgreSQL or CockroachDB data source, once it has one. */
export function pgPoolOf(dataSource: DataSourceLike): PgPoolLike | undefined {
  if (!usesPgPool(dataSource)) return undefined;
  const pool = (dataSource.driver as { master?: PgPoolLike } | undefined)?.master;
  return typeof pool?.connect === 'function' ? pool : undefined;
}

/** The sockets of a PostgreSQL data source's pool, for a data source the package owns. */
function pgSockets(dataSource: DataSourceLike): Array<{ destroy(): void }> {
  return (pgPoolOf(dataSource)?._clients ?? []).flatMap((client) => (client.connection?.stream ? [client.connection.stream] : []));
}

/**
 * pg's pool.end() waits for a busy connection's socket to close, which never happens while the server is
 * silent: destroying the sockets lets it finish. Only for pools the package owns, and only PostgreSQL pools
 * are known to need it.
 */
export function forcePgSocketsClosed(dataSource: DataSourceLike): void {
  for (const socket of pgSockets(dataSource)) socket.destroy();
}

/**
 * Destroys a data source the package owns, politely: pg sends each connection's Terminate. For an idle
 * connection pg's pool.end() does not wait for the socket to close, which leaves it half-open for minutes
 * when the server is silent; once the Terminate is on its way, the sockets are freed.
 */
export async function destroyOwned(dataSource: DataSourceLike): Promise<void> {
  const sockets = pgSockets(dataSource);
  try {
    await dataSource.destroy();
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

export interface ProbeSettings {
  /** Shown in the server's session list (pg_stat_activity.application_name), so the probe is told from the app. */
  readonly applicationName: string;
  /** Bound of the probe's connect, so a connect to a silent server ends by itself. */
  readonly connectTimeoutMs: number;
  /** Hears the probe pool's errors: its idle connection died (server restarted, backend terminated, reset). */
  readonly onPoolError: (error: Error) => void;
}

/**
 * The options of the package's own probe connection: the app's connection options (host, credentials, TLS,
 * driver), with none of its schema (entities, subscribers, migrations), none of its schema steps
 * (synchronize, migrationsRun, dropSchema), no logging, no query cache, a pool of one and its own timeouts.
 * Of a replicated data source, the master is probed.
 */
export function probeOptions<O extends ConnectionOptions>(options: O, settings: ProbeSettings): O {
  const source = options as O & Record<string, unknown>;
  const master = (source.replication as { master?: object } | undefined)?.master;
  const extra = (source.extra ?? {}) as Record<string, unknown>;
  const base = {
    ...source,
    ...master,
    replication: undefined,
    entities: [],
    subscribers: [],
    migrations: [],
    synchronize: false,
    migrationsRun: false,
    dropSchema: false,
    cache: false,
    logging: false,
    logger: 'advanced-console',
  };
  switch (source.type) {
    case 'postgres':
    case 'cockroachdb':
      return {
        ...base,
        poolSize: 1,
        applicationName: settings.applicationName,
        installExtensions: false,
        extensions: undefined,
        poolErrorHandler: settings.onPoolError,
        // The one connection is kept (no idle eviction): its beats keep it alive, and its death is a loss at once.
        extra: { ...extra, max: 1, idleTimeoutMillis: 0, connectionTimeoutMillis: settings.connectTimeoutMs, application_name: settings.applicationName },
      } as O;
    case 'mysql':
    case 'mariadb':
      return { ...base, poolSize: 1, connectTimeout: settings.connectTimeoutMs, extra: { ...extra, connectionLimit: 1 } } as O;
    case 'oracle':
      return { ...base, poolSize: 1, extra: { ...extra, poolMax: 1 } } as O;
    case 'mongodb':
      return { ...base, poolSize: 1, extra: { ...extra, maxPoolSize: 1 } } as O;
    case 'mssql': {
      const one = (pool: unknown) => ({ ...(pool as object | undefined), max: 1, min: 0 });
      return { ...base, pool: one(source.pool), ...(extra.pool ? { extra: { ...extra, pool: one(extra.pool) } } : {}) } as O;
    }
    case 'sap':
      return { ...base, poolSize: 1, pool: { ...(source.pool as object | undefined), maxConnectedOrPooled: 1 } } as O;
    default:
      return base as O;
  }
}
