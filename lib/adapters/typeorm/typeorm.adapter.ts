import { abortable, onAbort } from '../../core/abortable.js';
import type { BeatReport, ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import { messages } from '../../core/messages.js';
import { optionSecrets } from '../known-secrets.js';
import type { DataSourceLike } from './data-source-like.js';
import { PgPoolPressure } from './pg-pool.pressure.js';
import { TypeOrmProbe } from './typeorm.probe.js';
import { destroyOwned, forcePgSocketsClosed, hasServer, pgPoolOf, pingFor, usesPgPool, type Ping } from './typeorm-drivers.js';

export interface TypeOrmAdapterOptions {
  /** SQL of the heartbeat. Default: chosen from the driver (SELECT 1, SELECT 1 FROM DUAL on Oracle, ...). */
  pingQuery?: string;
  /**
   * TCP keepalive of the data source's PostgreSQL or CockroachDB pool, set only when given (default: off,
   * the package changes nothing). Merged under the user's own `extra` (pg.Pool options): into the data
   * source's options when the package initializes it, into its live pool when the app did (the connections
   * it opens from then on).
   */
  postgresKeepAlive?: { initialDelayMs: number };
  /** Bound of the probe's connect. Default 10 000. */
  connectTimeoutMs?: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Monitors a TypeORM DataSource of any driver, and does it no harm.
 *
 * - Ownership: a data source that is initialized when monitoring starts belongs to the app (or
 *   TypeOrmModule): the package never destroys, initializes or re-configures it. One it finds not
 *   initialized, it initializes once, so its schema steps (synchronize, migrationsRun, dropSchema) run
 *   once; only a first initialize that never succeeded is tried again. It destroys that one at shutdown.
 * - Pinging: for a database server, on a probe connection of the package's own (TypeOrmProbe), never
 *   through the app's pool: borrowing from the pool would measure the pool's queue, and timing the borrow
 *   apart from the query still could not prove the server answers while the app holds every connection.
 *   The app's pg pool is only read (PgPoolPressure): queries waiting for a connection read degraded.
 *   A database in the process (sqlite, sql.js, ...) has no server and no pool: its data source is pinged.
 * - After a loss, only the probe is replaced. The app's pool drops its broken connections by itself and
 *   opens new ones once the server answers, which the probe proves.
 */
export class TypeOrmAdapter implements ConnectionAdapter {
  readonly kind = 'typeorm';
  readonly target: string;
  private readonly runPing: Ping;
  private readonly connectTimeoutMs: number;
  private readonly probe?: TypeOrmProbe;
  private readonly pressure?: PgPoolPressure;
  /** Decided at the first open, once and for all. */
  private owner?: 'app' | 'package';
  /** The package's initialize of a data source it owns has succeeded: it never runs again. */
  private initializedOnce = false;
  private initializing?: Promise<void>;
  /** The package bounded the connect of its initialize (see tuneOwnedPool). */
  private connectBoundedForInitialize = false;
  private destroying?: Promise<void>;

  constructor(
    private readonly dataSource: DataSourceLike,
    connection: string,
    private readonly options: TypeOrmAdapterOptions = {},
  ) {
    this.target = describeTarget(dataSource);
    this.runPing = pingFor(dataSource.options.type, options.pingQuery);
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    if (hasServer(dataSource)) {
      this.probe = new TypeOrmProbe(dataSource, this.runPing, {
        applicationName: `connection-health:${connection}`,
        connectTimeoutMs: this.connectTimeoutMs,
      });
    }
    if (usesPgPool(dataSource)) this.pressure = new PgPoolPressure(() => pgPoolOf(dataSource));
  }

  async open(signal: AbortSignal): Promise<void> {
    if (!this.owner) {
      this.owner = this.dataSource.isInitialized ? 'app' : 'package';
      if (this.owner === 'app') this.keepAliveLivePool();
    }
    if (this.owner === 'package') await this.initializeOnce(signal);
    if (!this.dataSource.isInitialized) throw new Error(messages.typeormNotInitialized());
    if (this.probe) await this.probe.open(signal);
    else await abortable(this.runPing(this.dataSource), signal);
  }

  async ping(signal: AbortSignal): Promise<BeatReport | void> {
    // Destroyed by its owner: no query of the app can run, whatever the server says.
    if (!this.dataSource.isInitialized) throw new Error(messages.typeormNotInitialized());
    if (!this.probe) {
      await abortable(this.runPing(this.dataSource), signal);
      return;
    }
    await this.probe.ping(signal);
    return this.pressure?.read();
  }

  /** Closes the probe connection, and destroys the data source only if the package initialized it. */
  async close(signal: AbortSignal): Promise<void> {
    await Promise.all([this.probe?.close(signal), this.owner === 'package' ? this.destroyOwnDataSource(signal) : undefined]);
  }

  /** Passwords and URLs of the data source's options: its own, its replicas', its pool's (`extra`), its TLS key's. */
  knownSecrets(): string[] {
    return optionSecrets(this.dataSource.options);
  }

  /** The probe connection's death (server restarted or killed, backend terminated) is a loss at once. */
  observeLoss(onLoss: (error: Error) => void): () => void {
    return this.probe?.observeLoss(onLoss) ?? (() => undefined);
  }

  /** One initialize at a time (a second one while the first hangs would make a second pool), and none once one succeeded. */
  private async initializeOnce(signal: AbortSignal): Promise<void> {
    if (this.initializedOnce) return;
    if (!this.initializing) {
      this.tuneOwnedPool();
      this.initializing = this.dataSource.initialize().then(() => {
        this.initializedOnce = true;
        this.unboundPoolConnect();
      });
      this.initializing.catch(() => undefined).finally(() => (this.initializing = undefined));
    }
    await abortable(this.initializing, signal);
  }

  /** Destroys the data source the package initialized, once however often asked; forces its sockets shut on abort. */
  private async destroyOwnDataSource(signal: AbortSignal): Promise<void> {
    // An initialize still under way would leave an open pool behind a destroy: the destroy follows it,
    // even when a forced close stops waiting for either.
    const initialized = this.initializing?.catch(() => undefined) ?? Promise.resolve();
    this.destroying ??= initialized
      .then(() => (this.dataSource.isInitialized ? destroyOwned(this.dataSource) : undefined))
      .finally(() => (this.destroying = undefined));
    const stopForcing = onAbort(signal, () => forcePgSocketsClosed(this.dataSource));
    try {
      await abortable(this.destroying, signal);
    } finally {
      stopForcing();
    }
  }

  /**
   * Keepalive, when asked; and a bounded connect for the initialize only, unless the user set one, so an
   * initialize against a silent server fails at connectTimeoutMs and the next attempt starts afresh. Once
   * initialized, the pool gets the user's setting back (none): pg's connectionTimeoutMillis also bounds how
   * long the app's queries wait for a pooled connection, and would fail them under load.
   */
  private tuneOwnedPool(): void {
    if (!usesPgPool(this.dataSource)) return;
    const extra: Record<string, unknown> = { ...(this.dataSource.options.extra as object | undefined) };
    this.connectBoundedForInitialize = extra.connectionTimeoutMillis === undefined;
    if (this.connectBoundedForInitialize) extra.connectionTimeoutMillis = this.connectTimeoutMs;
    this.dataSource.setOptions({ extra: { ...extra, ...this.keepAliveFor(extra) } });
  }

  /** Gives the initialized pool the user's own connect bound back: none. */
  private unboundPoolConnect(): void {
    const pool = pgPoolOf(this.dataSource) as { options: Record<string, unknown> } | undefined;
    if (this.connectBoundedForInitialize && pool) delete pool.options.connectionTimeoutMillis;
  }

  /** postgresKeepAlive, asked for an app's data source: its pool opens its next connections with it. */
  private keepAliveLivePool(): void {
    const pool = pgPoolOf(this.dataSource) as { options: Record<string, unknown> } | undefined;
    if (pool) Object.assign(pool.options, this.keepAliveFor(pool.options));
  }

  /** The keepalive settings to add, leaving any the user set. */
  private keepAliveFor(current: Record<string, unknown>): Record<string, unknown> {
    const asked = this.options.postgresKeepAlive;
    if (!asked) return {};
    return { keepAlive: current.keepAlive ?? true, keepAliveInitialDelayMillis: current.keepAliveInitialDelayMillis ?? asked.initialDelayMs };
  }
}

/** Driver and host without credentials, e.g. "postgres 10.0.0.5:5432/orders" or "sqljs". */
function describeTarget(dataSource: DataSourceLike): string {
  const options = dataSource.options as { type: string; host?: string; port?: number; database?: unknown };
  if (!options.host) return options.type;
  const port = options.port ? `:${options.port}` : '';
  const database = typeof options.database === 'string' ? `/${options.database}` : '';
  return `${options.type} ${options.host}${port}${database}`;
}
