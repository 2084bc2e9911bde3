import { setMaxListeners } from 'node:events';
import { constants } from 'node:os';

const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT'] as const;
type ShutdownSignal = (typeof SHUTDOWN_SIGNALS)[number];

/** After a signal that forces the shutdown, the process ends at the latest this much later. */
export const FORCED_EXIT_AFTER_MS = 1_000;

/**
 * A signal this soon after the last one taken is the same one delivered twice: npm and shells pass a
 * signal on to their child, which also gets it from the terminal or `kill -- -pgid`.
 */
export const DUPLICATE_SIGNAL_MS = 1_000;

export interface ShutdownSignalHandlers {
  /** The first signal: the app's own listener (app.enableShutdownHooks()) begins the shutdown. */
  onFirst(signal: ShutdownSignal): void;
  /** A second signal: hurry. */
  onForce(signal: ShutdownSignal): void;
}

/**
 * The process signals of a shutdown, so that every path ends the process:
 * - A SIGTERM or SIGINT during shutdown (the second, when a signal began it) means "now": `force` aborts.
 *   The package listens from bootstrap when the app already listens (app.enableShutdownHooks()), to tell
 *   the second signal from the first, and otherwise from the start of shutdown. As a listener turns the
 *   signal's default action off, the package does what it would have done: should the process still run a
 *   second later (a hook of the app's own that never returns), it exits with 128 + the signal's number; and
 *   when the app itself called close(), the signal is raised again once the close is done.
 * - When a signal began the shutdown, Nest raises it again once the app is closed, and its default action
 *   ends the process with 128 + its number. With `exitZero`, the package hears it instead and ends the
 *   process with code 0 (or the process.exitCode the app set): a clean stop for the restart policy, and a
 *   timer or socket that user code left behind cannot keep a closed app alive. Should other listeners of
 *   that signal still be at work (a telemetry flush), they get what is left of the shutdown's bound first.
 */
export class ShutdownSignals {
  readonly force = new AbortController();
  private readonly listeners = new Map<ShutdownSignal, () => void>();
  private shuttingDown = false;
  /** When the last signal taken (not a duplicate) came. */
  private lastAt?: number;
  /** When shutdown began; its bound runs from here. */
  private beganAt?: number;
  private forcedBy?: ShutdownSignal;
  private forcedExit?: NodeJS.Timeout;

  constructor(private readonly handlers: ShutdownSignalHandlers) {
    // Every connection's close listens to it: a hundred connections are no listener leak.
    setMaxListeners(0, this.force.signal);
  }

  /** At bootstrap: hear the signals the app already handles, to tell a second one from the first. */
  watch(): void {
    for (const signal of SHUTDOWN_SIGNALS) if (process.listenerCount(signal) > 0) this.hear(signal);
  }

  /** When shutdown begins: from now on, any signal forces. */
  shutdownBegins(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.beganAt = Date.now();
    for (const signal of SHUTDOWN_SIGNALS) this.hear(signal);
  }

  /**
   * When shutdown ends, before Nest raises again the signal that began it, if any. `boundMs`: how long the
   * whole shutdown may take from its start (drain + deadline + 1 s); other listeners of the raised signal
   * get what is left of it.
   */
  shutdownEnds(endingSignal: string | undefined, { exitZero, boundMs }: { exitZero: boolean; boundMs: number }): void {
    for (const [signal, listener] of this.listeners) process.removeListener(signal, listener);
    this.listeners.clear();
    if (endingSignal) {
      if (exitZero) {
        process.once(endingSignal, () => {
          if (process.listenerCount(endingSignal) === 0) process.exit();
          else setTimeout(() => process.exit(), Math.max(0, (this.beganAt ?? Date.now()) + boundMs - Date.now())).unref();
        });
      }
      return; // Nest raises it again; the forced exit stays armed in case another hook never returns
    }
    clearTimeout(this.forcedExit);
    if (this.forcedBy) process.kill(process.pid, this.forcedBy);
  }

  private hear(signal: ShutdownSignal): void {
    if (this.listeners.has(signal)) return;
    const listener = () => this.heard(signal);
    this.listeners.set(signal, listener);
    process.on(signal, listener);
  }

  private heard(signal: ShutdownSignal): void {
    const now = Date.now();
    if (this.lastAt !== undefined && now - this.lastAt < DUPLICATE_SIGNAL_MS) return;
    const first = this.lastAt === undefined && !this.shuttingDown;
    this.lastAt = now;
    if (first) return this.handlers.onFirst(signal);
    if (this.forcedBy) return;
    this.forcedBy = signal;
    this.handlers.onForce(signal);
    this.force.abort(new Error(`forced by a second signal (${signal})`));
    this.forcedExit = setTimeout(() => process.exit(128 + constants.signals[signal]), FORCED_EXIT_AFTER_MS).unref();
  }
}
