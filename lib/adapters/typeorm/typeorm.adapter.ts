import type { DataSource } from 'typeorm';
import { abortable } from '../../core/abortable.js';
import type { ConnectionAdapter } from '../../core/connection-adapter.interface.js';

export interface TypeOrmAdapterOptions {
  /** SQL of the heartbeat. Default: chosen from the driver (SELECT 1, SELECT 1 FROM DUAL on Oracle, ...). */
  pingQuery?: string;
  /**
   * TCP keepalive of a PostgreSQL or CockroachDB pool: merged into the data source's `extra` (pg.Pool
   * options) unless the user set them there. Applies when the pool is next created. Default: off.
   */
  postgresKeepAlive?: { initialDelayMs: number };
  /**
   * Bound of a new pool connection (pg's connectionTimeoutMillis) unless the user set one: without it, a
   * connect to a silent server waits forever and so would every reconnect after it. Default 10 000.
   */
  connectTimeoutMs?: number;
}

const POSTGRES_POOLS = new Set(['postgres', 'cockroachdb']);

/** The driver's cheapest round trip to the server. */
function pingFor(dataSource: DataSource): (query: (sql: string) => Promise<unknown>) => Promise<unknown> {
  switch (dataSource.options.type) {
    case 'oracle':
      return (query) => query('SELECT 1 FROM DUAL');
    case 'sap':
      return (query) => query('SELECT 1 FROM DUMMY');
    case 'mongodb': {
      // MongoDB has no SQL: its driver exposes the client, whose ping command is the round trip.
      const driver = dataSource.driver as unknown as { queryRunner?: { databaseConnection?: MongoLike } };
      return () => {
        const client = driver.queryRunner?.databaseConnection;
        if (!client) return Promise.reject(new Error('MongoDB client is not connected'));
        return client.db().command({ ping: 1 });
      };
    }
    default:
      return (query) => query('SELECT 1');
  }
}

interface MongoLike {
  db(): { command(command: object): Promise<unknown> };
}

/** The pg.Pool inside TypeORM's PostgreSQL driver: only what loss detection and a forced close need. */
interface PgPoolLike {
  on(event: 'error', listener: (error: Error) => void): void;
  removeListener(event: 'error', listener: (error: Error) => void): void;
  _clients?: Array<{ connection?: { stream?: { destroy(): void } } }>;
}

/**
 * Monitors a TypeORM DataSource of any driver. It pings with the driver's cheapest query and, after a
 * loss, destroys and initializes the data source again, so its pool holds no broken sockets; the user's
 * repositories keep working because they hold the same DataSource object. The package closes only what it
 * opened: a data source that was already initialized is left to its owner (e.g. @nestjs/typeorm) at shutdown.
 */
export class TypeOrmAdapter implements ConnectionAdapter {
  readonly kind = 'typeorm';
  readonly target: string;
  private readonly runPing: (query: (sql: string) => Promise<unknown>) => Promise<unknown>;
  private opened = false;
  private ownsDataSource = false;
  private destroying?: Promise<void>;
  private initializing?: Promise<unknown>;
  private onLoss?: (error: Error) => void;
  private stopWatchingPool?: () => void;

  constructor(
    private readonly dataSource: DataSource,
    options: TypeOrmAdapterOptions = {},
  ) {
    this.target = describeTarget(dataSource);
    this.runPing = options.pingQuery ? (query) => query(options.pingQuery as string) : pingFor(dataSource);
    if (POSTGRES_POOLS.has(dataSource.options.type)) this.tunePostgresPool(options);
  }

  async open(signal: AbortSignal): Promise<void> {
    if (!this.opened) {
      this.opened = true;
      // Initialized by someone else (e.g. @nestjs/typeorm): prove it works, tear nothing down, leave it to them.
      if (this.dataSource.isInitialized) {
        await this.ping(signal);
        return this.watchPool();
      }
      this.ownsDataSource = true;
    }
    await this.destroy(signal);
    // One initialize at a time: a second one while the first hangs would create a second pool.
    this.initializing ??= this.dataSource.initialize().finally(() => (this.initializing = undefined));
    await abortable(this.initializing, signal);
    this.watchPool();
  }

  async ping(signal: AbortSignal): Promise<void> {
    if (!this.dataSource.isInitialized) throw new Error('data source is not initialized');
    await abortable(this.runPing((sql) => this.dataSource.query(sql)), signal);
  }

  async close(signal: AbortSignal): Promise<void> {
    this.stopWatchingPool?.();
    if (!this.ownsDataSource) return;
    // An initialize still under way would leave an open pool behind the destroy: let it finish first.
    if (this.initializing) await abortable(this.initializing.catch(() => undefined), signal);
    await this.destroy(signal);
  }

  observeLoss(onLoss: (error: Error) => void): () => void {
    this.onLoss = onLoss;
    return () => (this.onLoss = undefined);
  }

  /**
   * A pg pool emits 'error' when an idle client's socket dies (server killed or restarted, backend
   * terminated, reset): reported at once rather than at the next heartbeat.
   */
  private watchPool(): void {
    this.stopWatchingPool?.();
    const pool = this.pgPool();
    if (!pool) return;
    const listener = (error: Error) => this.onLoss?.(error);
    pool.on('error', listener);
    this.stopWatchingPool = () => {
      pool.removeListener('error', listener);
      this.stopWatchingPool = undefined;
    };
  }

  private pgPool(): PgPoolLike | undefined {
    if (!POSTGRES_POOLS.has(this.dataSource.options.type)) return undefined;
    const pool = (this.dataSource.driver as unknown as { master?: PgPoolLike }).master;
    return typeof pool?.on === 'function' ? pool : undefined;
  }

  /** Destroys the data source once, however often it is asked; forces its sockets shut on abort. */
  private async destroy(signal: AbortSignal): Promise<void> {
    if (!this.dataSource.isInitialized && !this.destroying) return;
    this.stopWatchingPool?.();
    this.destroying ??= this.dataSource.destroy().finally(() => (this.destroying = undefined));
    const force = () => this.forceSocketsClosed();
    signal.addEventListener('abort', force, { once: true });
    try {
      await abortable(this.destroying, signal);
    } finally {
      signal.removeEventListener('abort', force);
    }
  }

  /**
   * pg's pool.end() waits for every client's socket to close, which never happens while the server is
   * silent: destroying the sockets lets it finish. Only PostgreSQL pools are known to need this.
   */
  private forceSocketsClosed(): void {
    for (const client of this.pgPool()?._clients ?? []) client.connection?.stream?.destroy();
  }

  private tunePostgresPool(options: TypeOrmAdapterOptions): void {
    const extra: Record<string, unknown> = { ...(this.dataSource.options.extra as object | undefined) };
    extra.connectionTimeoutMillis ??= options.connectTimeoutMs ?? 10_000;
    if (options.postgresKeepAlive) {
      extra.keepAlive ??= true;
      extra.keepAliveInitialDelayMillis ??= options.postgresKeepAlive.initialDelayMs;
    }
    this.dataSource.setOptions({ extra });
  }
}

/** Driver and host without credentials, e.g. "postgres 10.0.0.5:5432/orders" or "sqljs". */
function describeTarget(dataSource: DataSource): string {
  const options = dataSource.options as { type: string; host?: string; port?: number; database?: unknown };
  if (!options.host) return options.type;
  const port = options.port ? `:${options.port}` : '';
  const database = typeof options.database === 'string' ? `/${options.database}` : '';
  return `${options.type} ${options.host}${port}${database}`;
}
