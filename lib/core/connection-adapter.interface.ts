import type { Observable } from 'rxjs';

/** What a beat that was answered may add: an impairment turns the connection degraded, never down. */
export interface BeatReport {
  /**
   * Why the connection serves the app poorly although the far end answered (a saturated pool, say). The
   * connection reads degraded with this as its reason, and up again at the first beat without one. Keep it
   * the same text while the cause lasts: the figures carry what changes.
   */
  readonly impairment?: string;
  /** Measurements taken with the beat (a pool's waiting clients, say), shown in snapshot, health details and metrics. */
  readonly figures?: Readonly<Record<string, number>>;
}

/**
 * How the engine drives one kind of connection. Every method receives an AbortSignal that fires at its
 * deadline; the engine stops waiting at that moment whatever the adapter does, so a hung client never
 * blocks a decision. Honouring the signal is how an adapter frees what the hung call still holds.
 */
export interface ConnectionAdapter {
  /** 'typeorm', 'tcp', 'custom', ...: shown in snapshots and health details. */
  readonly kind: string;
  /** Where it points, without credentials (host:port, driver name): shown in health details. */
  readonly target?: string;

  /**
   * Makes the connection usable from whatever state it is in: at start and on every reconnect attempt.
   * Tearing down a previous, broken session is the adapter's job, so sessions never pile up.
   */
  open(signal: AbortSignal): Promise<void>;

  /**
   * One heartbeat: resolves when the far end answered. A rejection or a missed deadline is a failed beat.
   * It may resolve with a report: the far end answered, but the connection serves the app poorly.
   */
  ping(signal: AbortSignal): Promise<void | BeatReport>;

  /** Closes politely; when `signal` aborts, force-closes what is left. Called once, on shutdown. */
  close(signal: AbortSignal): Promise<void>;

  /**
   * Reports a loss the client noticed by itself (socket closed, reset, server BYE), so the engine need not
   * wait for the next heartbeat. Returns the unsubscribe function.
   */
  observeLoss?(onLoss: (error: Error) => void): () => void;

  /**
   * For adapters that create a client per session (IMAP, STOMP): the live client, or undefined while there
   * is none. The app reaches it through the connection's handle and must not keep an old one.
   */
  currentClient?(): unknown;

  /**
   * The credentials this connection was configured with (passwords, passcodes, tokens, URLs holding
   * them, TLS key passphrases), so that every output of the package can scrub them. Asked once, before
   * the first connect.
   */
  knownSecrets?(): Iterable<string | undefined>;

  /** Emits each new live client, and undefined when the session is lost or closed. */
  readonly clientChanges$?: Observable<unknown>;
}
