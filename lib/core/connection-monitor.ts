import { Subject, type Observable } from 'rxjs';
import { backoffDelay } from './backoff.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import type { BeatReport, ConnectionAdapter } from './connection-adapter.interface.js';
import type { ConnectionEvent } from './connection-event.js';
import type { ConnectionSnapshot } from './connection-snapshot.js';
import { isClosing, isServing, type ConnectionState } from './connection-state.js';
import { withDeadline } from './deadline.js';
import { HeartbeatTimeoutError } from './errors/heartbeat-timeout.error.js';
import { messages } from './messages.js';
import type { MonitorOptions } from './monitor-options.js';
import { RttSuspicion } from './rtt-suspicion.js';
import { SecretScrubber } from './secret-scrubber.js';
import { callUser, type CallbackFailure } from './user-callback.js';

export interface MonitorDependencies {
  readonly clock?: Clock;
  /** Source of jitter; tests pin it. */
  readonly random?: () => number;
  /** Where a throwing onFailure callback is reported; the monitor itself goes on. */
  readonly reportHandlerError?: (error: unknown, message: string) => void;
  /** Removes the app's secrets from every reason and error kept in a snapshot. Default: shape patterns only. */
  readonly scrubber?: SecretScrubber;
}

type Operation = 'connect' | 'heartbeat';

/** The name of a connection's one schedule timer (its next heartbeat or reconnect attempt), as a clock sees it. */
export const stepTimerName = (connection: string): string => `connection-health:${connection}`;

/**
 * Once a close is forced (the deadline passed, or a second signal), how long an adapter may still take to
 * close by force (destroying its sockets) before the monitor stops waiting: well inside the one second a
 * second signal may take to end the process.
 */
export const FORCED_CLOSE_GRACE_MS = 500;

/**
 * Watches one connection: heartbeats it, declares it down when beats fail or the client reports a loss,
 * reconnects with backoff, gives up after max attempts, and closes it on purpose. One state machine;
 * `transition()` is the only place its state changes. Every decision that abandons a running operation
 * starts a new "course", and a result that arrives from an older course is ignored, so a late answer of a
 * hung ping can never undo a later decision.
 */
export class ConnectionMonitor {
  readonly events$: Observable<ConnectionEvent>;
  private readonly events = new Subject<ConnectionEvent>();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly reportHandlerError: (error: unknown, message: string) => void;
  /** Holds the credentials: private, so that no inspection of a monitor shows them. */
  readonly #adapter: ConnectionAdapter;
  readonly #scrubber: SecretScrubber;
  private readonly timerName: string;
  private current: ConnectionSnapshot;
  private course = 0;
  /** The one scheduled step: the next heartbeat or the next reconnect attempt. */
  private stepTimer?: TimerHandle;
  /** The open() or ping() in flight; aborted when the course changes. */
  private operation?: AbortController;
  private failureReported = false;
  private readonly suspicion?: RttSuspicion;
  private stopObservingLoss?: () => void;
  private closing?: Promise<void>;
  /** Events not yet delivered: a subscriber that causes a transition must not overtake the others. */
  private readonly outbox: ConnectionEvent[] = [];
  private delivering = false;
  private completeWhenDelivered = false;

  constructor(
    readonly name: string,
    adapter: ConnectionAdapter,
    readonly options: MonitorOptions,
    dependencies: MonitorDependencies = {},
  ) {
    this.#adapter = adapter;
    this.clock = dependencies.clock ?? systemClock;
    this.random = dependencies.random ?? Math.random;
    this.reportHandlerError = dependencies.reportHandlerError ?? (() => undefined);
    this.#scrubber = dependencies.scrubber ?? new SecretScrubber();
    this.#learnSecrets();
    this.timerName = stepTimerName(name);
    this.events$ = this.events.asObservable();
    if (options.suspicion.enabled) this.suspicion = new RttSuspicion(options.suspicion);
    this.current = Object.freeze({
      name,
      kind: adapter.kind,
      ...(adapter.target === undefined ? {} : { target: this.#scrubber.scrub(adapter.target) }),
      state: 'idle',
      since: this.clock.now(),
      reason: 'not started',
      consecutiveFailures: 0,
      reconnectAttempts: 0,
      staleAfterMs: options.heartbeat.staleAfterMs,
    });
  }

  get state(): ConnectionState {
    return this.current.state;
  }

  snapshot(): ConnectionSnapshot {
    return this.current;
  }

  /** Connects and starts heartbeats. Never throws: failures become states. Calling it twice does nothing. */
  start(): void {
    if (this.current.state !== 'idle') return;
    this.stopObservingLoss = this.#adapter.observeLoss?.((error) => {
      if (isServing(this.current.state)) this.lose(`connection lost: ${this.#scrubber.describe(error)}`, error);
    });
    this.transition('connecting', 'starting');
    void this.connect(false);
  }

  /** Drops the current session and connects again at once, resetting the attempt count. */
  forceReconnect(reason = 'reconnect requested'): void {
    const { state } = this.current;
    if (state === 'idle' || isClosing(state)) return;
    this.lose(reason, undefined, 0);
  }

  /**
   * Stops heartbeats and reconnects for good and closes the connection politely; at `timeoutMs`, or when
   * `force` aborts, the adapter is told to force-close. Idempotent: every call returns the same promise.
   */
  close(timeoutMs: number, force?: AbortSignal): Promise<void> {
    this.closing ??= this.shutdown(timeoutMs, force);
    return this.closing;
  }

  private async shutdown(timeoutMs: number, force?: AbortSignal): Promise<void> {
    const opened = this.current.state !== 'idle';
    this.changeCourse();
    this.stopObservingLoss?.();
    this.transition('closing', messages.closedOnPurpose(this.name));
    let reason = messages.closedOnPurpose(this.name);
    if (opened) {
      try {
        // Even when forced before it began, the adapter's close runs, with an aborted signal: it then closes by force.
        await this.withDeadline('close', timeoutMs, (signal) => this.#adapter.close(signal), force, undefined, FORCED_CLOSE_GRACE_MS);
      } catch (error) {
        const lastError = this.#scrubber.describe(error);
        this.update({ lastError });
        reason = messages.closedByForce(this.name, lastError);
      }
    }
    this.transition('closed', reason);
    this.completeWhenDelivered = true;
    this.deliver();
  }

  private async connect(isRetry: boolean): Promise<void> {
    const course = this.course;
    try {
      await this.run('connect', this.options.heartbeat.connectTimeoutMs, (signal) => this.#adapter.open(signal));
    } catch (error) {
      this.#learnSecrets();
      if (course === this.course) this.connectFailed(error, isRetry);
      return;
    }
    this.#learnSecrets();
    if (course !== this.course) return;
    this.failureReported = false;
    const reason = isRetry ? `reconnected after ${this.current.reconnectAttempts + 1} attempt(s)` : 'connected';
    this.transition('up', reason, { consecutiveFailures: 0, reconnectAttempts: 0, nextAttemptAt: undefined, connectedAt: this.clock.now() });
    this.scheduleBeat();
  }

  private connectFailed(error: unknown, isRetry: boolean): void {
    const attempts = this.current.reconnectAttempts + (isRetry ? 1 : 0);
    const lastError = this.#scrubber.describe(error);
    const { maxAttempts, maxDelayMs } = this.options.reconnect;
    if (attempts >= maxAttempts) {
      // One failure episode is one 'failed': the 'retry' policy's later attempts stay quiet until one succeeds.
      const patch = { reconnectAttempts: attempts, lastError, nextAttemptAt: undefined };
      if (this.current.state === 'failed') this.update(patch);
      else this.transition('failed', `gave up after ${attempts} reconnect attempt(s): ${lastError}`, patch);
      this.reportFailure();
      if (this.options.failure.policy === 'retry') this.scheduleAttempt(maxDelayMs * (1 - this.options.reconnect.jitter * this.random()));
      return;
    }
    this.transition('down', `${isRetry ? 'reconnect' : 'connect'} failed: ${lastError}`, { reconnectAttempts: attempts, lastError });
    this.scheduleAttempt(backoffDelay(attempts + 1, this.options.reconnect, this.random));
  }

  private scheduleBeat(delayMs?: number): void {
    const { intervalMs, jitter } = this.options.heartbeat;
    // Jitter only shortens the interval, so intervalMs + failureThreshold * timeoutMs stays a true bound.
    this.setStep(delayMs ?? intervalMs * (1 - jitter * this.random()), () => void this.beat());
  }

  private async beat(): Promise<void> {
    const course = this.course;
    const startedAt = this.clock.now();
    const stopSuspecting = this.suspectIfSlow(course);
    let report: BeatReport | undefined;
    try {
      await this.run('heartbeat', this.options.heartbeat.timeoutMs, async (signal) => void (report = (await this.#adapter.ping(signal)) ?? undefined));
    } catch (error) {
      if (course === this.course) this.beatFailed(error);
      return;
    } finally {
      stopSuspecting();
    }
    if (course !== this.course) return;
    const at = this.clock.now();
    const rttMs = Math.round((at - startedAt) * 100) / 100;
    this.suspicion?.record(rttMs);
    const { impairment, figures }: BeatReport = report ?? {};
    this.update({ lastBeatAt: at, lastRttMs: rttMs, consecutiveFailures: 0, ...(figures ? { figures } : {}) });
    // Answered but impaired (a saturated pool, say): degraded, never down, so nothing is torn down for it.
    if (impairment !== undefined) {
      if (this.current.state === 'up' || this.current.reason !== this.#scrubber.reason(impairment)) this.transition('degraded', impairment);
    } else if (this.current.state === 'degraded') {
      this.transition('up', 'heartbeat answered again');
    }
    this.emit({ type: 'heartbeat', name: this.name, ok: true, rttMs, at, snapshot: this.current });
    this.scheduleBeat();
  }

  /**
   * Marks the connection degraded when the running beat stays unanswered for longer than its round-trip
   * history makes likely. A suspicion timer that fires late means a blocked event loop, which proves
   * nothing about the server: it is ignored. Returns the function that stops watching.
   */
  private suspectIfSlow(course: number): () => void {
    const afterMs = this.suspicion?.suspectAfterMs();
    if (afterMs === undefined || afterMs >= this.options.heartbeat.timeoutMs) return () => undefined;
    const dueAt = this.clock.now() + afterMs;
    const timer = this.clock.setTimer(() => {
      const late = this.clock.now() - dueAt > this.options.heartbeat.lagToleranceMs;
      if (late || course !== this.course || this.current.state !== 'up') return;
      const usual = Math.round((this.suspicion?.meanMs ?? 0) * 10) / 10;
      this.transition('degraded', `heartbeat unanswered after ${Math.round(afterMs)} ms, usually ${usual} ms (phi >= ${this.options.suspicion.phiThreshold})`);
    }, afterMs);
    return () => this.clock.clearTimer(timer);
  }

  private beatFailed(error: unknown): void {
    const failures = this.current.consecutiveFailures + 1;
    const lastError = this.#scrubber.describe(error);
    this.update({ consecutiveFailures: failures, lastError });
    this.emit({ type: 'heartbeat', name: this.name, ok: false, error: lastError, at: this.clock.now(), snapshot: this.current });
    if (failures >= this.options.heartbeat.failureThreshold) {
      this.lose(`heartbeat failed ${failures} time(s) in a row: ${lastError}`, error);
      return;
    }
    if (this.current.state === 'up') this.transition('degraded', `heartbeat failed: ${lastError}`);
    this.scheduleBeat(0); // confirm at once rather than a whole interval later
  }

  /** Declares the connection down and schedules the first reconnect attempt. */
  private lose(reason: string, error?: unknown, delayMs?: number): void {
    this.changeCourse();
    this.transition('down', reason, {
      reconnectAttempts: 0,
      ...(error === undefined ? {} : { lastError: this.#scrubber.describe(error) }),
    });
    this.scheduleAttempt(delayMs ?? backoffDelay(1, this.options.reconnect, this.random));
  }

  private scheduleAttempt(delayMs: number): void {
    this.update({ nextAttemptAt: this.clock.now() + delayMs });
    this.setStep(delayMs, () => {
      if (this.current.state === 'failed') this.update({ nextAttemptAt: undefined });
      else this.transition('reconnecting', `attempt ${this.current.reconnectAttempts + 1}`, { nextAttemptAt: undefined });
      void this.connect(true);
    });
  }

  private reportFailure(): void {
    if (this.failureReported) return;
    this.failureReported = true;
    const { onFailure } = this.options.failure;
    if (!onFailure) return;
    const snapshot = this.current;
    const report = (error: unknown, how: CallbackFailure) =>
      this.reportHandlerError(error, messages.callbackFailed(this.name, 'the onFailure handler', how, this.#scrubber.describe(error)));
    // Called after the transition has run its course, so the handler sees a settled monitor.
    queueMicrotask(() => callUser(() => onFailure(snapshot), report));
  }

  private async run(operation: Operation, timeoutMs: number, task: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const controller = new AbortController();
    this.operation = controller;
    try {
      await this.withDeadline(operation, timeoutMs, task, undefined, controller);
    } finally {
      if (this.operation === controller) this.operation = undefined;
    }
  }

  private withDeadline(
    operation: Operation | 'close',
    timeoutMs: number,
    task: (signal: AbortSignal) => Promise<void>,
    signal?: AbortSignal,
    controller?: AbortController,
    forceGraceMs?: number,
  ): Promise<void> {
    return withDeadline(task, {
      clock: this.clock,
      timeoutMs,
      lagToleranceMs: this.options.heartbeat.lagToleranceMs,
      signal,
      controller,
      forceGraceMs,
      onTimeout: () => new HeartbeatTimeoutError(this.name, operation, timeoutMs),
    });
  }

  /** Abandons whatever runs or waits; results of the old course are ignored from here on. */
  private changeCourse(): void {
    this.course += 1;
    this.operation?.abort(new Error(`superseded: ${this.name} changed course`));
    this.operation = undefined;
    this.clearStep();
  }

  private setStep(delayMs: number, step: () => void): void {
    this.clearStep();
    this.stepTimer = this.clock.setTimer(() => {
      this.stepTimer = undefined;
      step();
    }, delayMs, this.timerName);
  }

  private clearStep(): void {
    if (this.stepTimer === undefined) return;
    this.clock.clearTimer(this.stepTimer, this.timerName);
    this.stepTimer = undefined;
  }

  private update(patch: Partial<ConnectionSnapshot>): void {
    this.current = Object.freeze({ ...this.current, ...patch });
  }

  /** The only place a connection's state changes. */
  private transition(to: ConnectionState, reason: string, patch: Partial<ConnectionSnapshot> = {}): void {
    const from = this.current.state;
    const at = this.clock.now();
    const redacted = this.#scrubber.reason(reason);
    this.current = Object.freeze({ ...this.current, ...patch, state: to, since: at, reason: redacted });
    this.emit({ type: 'state', name: this.name, from, to, reason: redacted, at, snapshot: this.current });
  }

  /** Tells the scrubber the adapter's credentials: those of its options, and those a new client brought (a factory's). */
  #learnSecrets(): void {
    this.#scrubber.learn(this.name, this.#adapter.knownSecrets?.() ?? []);
  }

  /**
   * Delivers events one at a time, in the order they happened: when a subscriber causes a transition (the
   * 'exit' policy closes on 'failed'), the new event waits until every subscriber has seen the current one.
   */
  private emit(event: ConnectionEvent): void {
    this.outbox.push(event);
    this.deliver();
  }

  private deliver(): void {
    if (this.delivering) return;
    this.delivering = true;
    try {
      for (let event = this.outbox.shift(); event; event = this.outbox.shift()) this.events.next(event);
      if (this.completeWhenDelivered) this.events.complete();
    } finally {
      this.delivering = false;
    }
  }
}
