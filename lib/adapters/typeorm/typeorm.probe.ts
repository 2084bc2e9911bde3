import type { DataSource, DataSourceOptions } from 'typeorm';
import { abortable, onAbort } from '../../core/abortable.js';
import { messages } from '../../core/messages.js';
import { loadPeer } from '../load-peer.js';
import type { DataSourceLike } from './data-source-like.js';
import { destroyOwned, forcePgSocketsClosed, probeOptions, type Ping, type ProbeSettings } from './typeorm-drivers.js';

type TypeOrm = typeof import('typeorm');

/** One probe connection: its data source, when its initialize settled (true when it succeeded), its end. */
interface Session {
  readonly dataSource: DataSource;
  readonly ready: Promise<boolean>;
  ended?: Promise<void>;
}

/**
 * The package's own connection to the database of an app's data source, beside the app's pool rather than
 * in it: a second DataSource built from the same connection options, with no schema and no schema steps, a
 * pool of one and its own connect timeout (see probeOptions). A beat on it proves that the server answers
 * whatever the app's pool is doing, so a pool saturated by the app's own work can never read as an outage,
 * and a server that dies during a load spike is still noticed within the bound. It costs one server
 * connection per monitored data source. Being the package's own, it is replaced after every loss and
 * closed by force when it must.
 */
export class TypeOrmProbe {
  private session?: Session;
  private onLoss?: (error: Error) => void;

  constructor(
    private readonly source: DataSourceLike,
    private readonly runPing: Ping,
    private readonly settings: Omit<ProbeSettings, 'onPoolError'>,
  ) {}

  /** Opens a new probe connection, ending the previous one: after a loss it is broken, or proves nothing. */
  async open(signal: AbortSignal): Promise<void> {
    this.discard();
    const { DataSource } = await loadPeer<TypeOrm>('typeorm', 'TypeORM connections');
    if (signal.aborted) throw signal.reason;
    const onPoolError = (error: Error) => {
      // Only the current probe's: one being discarded errs too, as its socket is destroyed.
      if (this.session?.dataSource === dataSource) this.onLoss?.(error);
    };
    // The app's data source is a typeorm DataSource, so its options are typeorm's, changed only as probeOptions says.
    const dataSource = new DataSource(probeOptions(this.source.options, { ...this.settings, onPoolError }) as DataSourceOptions);
    const initialized = dataSource.initialize();
    const session: Session = { dataSource, ready: initialized.then(() => true, () => false) };
    this.session = session;
    const abandon = () => this.discard(session);
    signal.addEventListener('abort', abandon, { once: true });
    try {
      await abortable(initialized, signal);
    } finally {
      signal.removeEventListener('abort', abandon);
    }
  }

  async ping(signal: AbortSignal): Promise<void> {
    const dataSource = this.session?.dataSource;
    if (!dataSource?.isInitialized) throw new Error(messages.typeormProbeNotOpen());
    await abortable(this.runPing(dataSource), signal);
  }

  /** Closes the probe connection politely; by force when `signal` aborts. */
  async close(signal: AbortSignal): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (!session) return;
    const ended = this.end(session);
    const stopForcing = onAbort(signal, () => this.discard(session));
    try {
      await abortable(ended, signal);
    } finally {
      stopForcing();
    }
  }

  observeLoss(onLoss: (error: Error) => void): () => void {
    this.onLoss = onLoss;
    return () => (this.onLoss = undefined);
  }

  /**
   * Ends a probe connection at once, also one still connecting: its sockets are destroyed now, and its data
   * source destroyed once its initialize settles (a connect in progress ends by its own connect timeout).
   */
  private discard(session = this.session): void {
    if (!session) return;
    if (this.session === session) this.session = undefined;
    forcePgSocketsClosed(session.dataSource);
    void session.ready.then(() => forcePgSocketsClosed(session.dataSource));
    void this.end(session);
  }

  /** Destroys the probe's data source once its initialize settled; once, however often it is asked. */
  private end(session: Session): Promise<void> {
    session.ended ??= session.ready
      .then((ok) => (ok && session.dataSource.isInitialized ? destroyOwned(session.dataSource) : undefined))
      .catch(() => undefined);
    return session.ended;
  }
}
