import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import type { StateChangeEvent } from '../core/connection-event.js';
import { messages } from '../core/messages.js';
import { SecretScrubber } from '../core/secret-scrubber.js';
import { throttleReport, type CallbackFailure, type CallbackReport } from '../core/user-callback.js';
import { CONNECTION_HEALTH_OPTIONS } from '../connection-health.constants.js';
import type { ConnectionHealthModuleOptions } from '../interfaces/connection-health-options.interface.js';
import { ConnectionHealthLogger } from '../logging/connection-health.logger.js';
import type { ConnectionHandle } from '../registry/connection-handle.js';
import { ConnectionHealthRegistry } from '../registry/connection-health.registry.js';
import type { ConnectionChange } from './connection-change.js';
import type { ConnectionHealthPublisher } from './connection-health-publisher.interface.js';
import { ATTACH_PUBLISHER, type PublisherInternals } from './publisher-internals.js';

/** At shutdown, publishing in flight gets at most this long (and never past the shutdown deadline) before it is aborted. */
export const MAX_FLUSH_MS = 5_000;
/** A publish() still unsettled after this long is logged, its signal aborted, and no longer waited for. */
export const PUBLISH_DEADLINE_MS = 30_000;
/** At most this many publish() calls are waited for at once; beyond it the oldest is dropped as at its deadline. */
export const MAX_PENDING = 1_000;
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/**
 * Tells the `publishers` of every state transition, fire-and-forget: a monitor's event stream only starts
 * each publish() and goes on; what a publisher throws, rejects or never settles is logged or cut at
 * shutdown, and holds up neither the monitor nor the other publishers. Off (no subscription) without
 * publishers.
 *
 * At shutdown it runs in beforeApplicationShutdown, after every connection closed (onModuleDestroy), so the
 * last transitions (closing, closed, an outage during the drain) are published: each publisher's flush()
 * and the publish() calls still at work get what is left of the shutdown deadline, at most MAX_FLUSH_MS,
 * then the signal aborts them.
 */
@Injectable()
export class ConnectionHealthPublishers implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly publishers: readonly ConnectionHealthPublisher[];
  private readonly shutdownTimeoutMs: number;
  private readonly subscriptions: Subscription[] = [];
  private readonly abort = new AbortController();
  /** The calls still at work, oldest first, each with what cuts it at its deadline. */
  private readonly pending = new Map<Promise<unknown>, Cut | undefined>();
  private readonly reports = new Map<ConnectionHealthPublisher, ReturnType<typeof throttleReport>>();
  private readonly lateReports = new Map<ConnectionHealthPublisher, ReturnType<typeof throttleReport>>();
  private flushed?: Promise<void>;
  /** When the first connection began closing: the shutdown deadline counts from there. */
  private closingSince?: number;

  constructor(
    @Inject(CONNECTION_HEALTH_OPTIONS) options: ConnectionHealthModuleOptions,
    private readonly registry: ConnectionHealthRegistry,
    private readonly scrubber: SecretScrubber,
    private readonly logger: ConnectionHealthLogger,
  ) {
    // Only the publishers and the deadline are kept: the rest of the options holds credentials.
    this.publishers = Array.isArray(options.publishers) ? options.publishers : [];
    this.shutdownTimeoutMs = options.shutdown?.timeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  }

  /** Before anything is logged: the built-in publishers register their URL and secret with the scrubber. */
  onModuleInit(): void {
    for (const publisher of this.publishers) {
      (publisher as PublisherInternals)?.[ATTACH_PUBLISHER]?.({ logger: this.logger, scrubber: this.scrubber });
    }
  }

  onApplicationBootstrap(): void {
    if (this.publishers.length === 0) return;
    for (const handle of this.registry.all()) {
      this.subscriptions.push(
        handle.events$.subscribe((event) => {
          if (event.type === 'state') this.dispatch(changeOf(handle, event));
        }),
      );
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    const spent = this.closingSince === undefined ? 0 : Date.now() - this.closingSince;
    await this.flush(Math.max(0, Math.min(MAX_FLUSH_MS, this.shutdownTimeoutMs - spent)));
  }

  /**
   * Has every publisher deliver what it holds back, and waits for that and the publishing at work up to
   * `boundMs`; then aborts the rest and stops listening. Once: the shutdown, and the exit of the failure
   * policy 'exit' or the dead-man switch (which never reaches the shutdown hooks), both end here.
   */
  flush(boundMs: number): Promise<void> {
    if (this.publishers.length === 0) return Promise.resolve();
    return (this.flushed ??= this.flushWithin(boundMs));
  }

  private async flushWithin(boundMs: number): Promise<void> {
    const context = { signal: this.abort.signal };
    for (const publisher of this.publishers) {
      if (typeof publisher.flush !== 'function') continue;
      const report = (how: CallbackFailure, error: unknown) =>
        this.registry.reportCallbackFailure(error, messages.publisherFlushFailed(nameOf(publisher), how, this.scrubber.describe(error)));
      this.track(report, () => publisher.flush!(context));
    }
    let timer: NodeJS.Timeout | undefined;
    const settled = Promise.allSettled([...this.pending.keys()]).then(() => true);
    const cut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), boundMs)));
    const done = await Promise.race([settled, cut]);
    clearTimeout(timer);
    if (!done) this.logger.warn(messages.publishersCutAtShutdown(this.pending.size, boundMs));
    this.abort.abort();
    for (const entry of this.pending.values()) clearTimeout(entry?.timer);
    this.pending.clear();
    for (const subscription of this.subscriptions) subscription.unsubscribe();
  }

  private dispatch(change: ConnectionChange): void {
    if (change.to === 'closing' && this.closingSince === undefined) this.closingSince = Date.now();
    if (this.abort.signal.aborted) return;
    for (const publisher of this.publishers) {
      const report = this.reportOf(this.reports, publisher, this.registry.reportCallbackFailure);
      const onFailure = (how: CallbackFailure, error: unknown) =>
        report(error, messages.publisherFailed(nameOf(publisher), change.connection, how, this.scrubber.describe(error)));
      // A signal of its own, so that a call past its deadline can be told to stop; it aborts at shutdown too.
      const controller = new AbortController();
      const signal = AbortSignal.any([this.abort.signal, controller.signal]);
      const late = () =>
        this.reportOf(this.lateReports, publisher, (_error, message) => this.logger.warn(message))(
          undefined,
          messages.publisherNeverSettled(nameOf(publisher), change.connection, PUBLISH_DEADLINE_MS),
        );
      this.track(onFailure, () => publisher.publish(change, { signal }), { controller, late });
    }
  }

  /**
   * Calls a publisher so that nothing it does escapes, not even a report that fails (a value that no text
   * can be made of). A promise it returns is kept until it settles, for the flush at shutdown; with `cut`,
   * at most until its deadline, and the MAX_PENDING newest only.
   */
  private track(onFailure: (how: CallbackFailure, error: unknown) => void, call: () => unknown, cut?: Omit<Cut, 'timer'>): void {
    const fail = (how: CallbackFailure, error: unknown) => {
      try {
        onFailure(how, error);
      } catch {
        // The report itself failed: nothing more can be told, and the publishers after this one go on.
      }
    };
    let result: unknown;
    try {
      result = call();
    } catch (error) {
      fail('threw', error);
      return;
    }
    if (!isThenable(result)) return;
    const settled = Promise.resolve(result).then(
      () => undefined,
      (error: unknown) => {
        if (!this.abort.signal.aborted) fail('rejected', error);
      },
    );
    void settled.finally(() => this.drop(settled, false));
    if (!cut) {
      this.pending.set(settled, undefined);
      return;
    }
    const timer = setTimeout(() => this.drop(settled, true), PUBLISH_DEADLINE_MS);
    timer.unref?.();
    this.pending.set(settled, { ...cut, timer });
    if (this.pending.size > MAX_PENDING) {
      const oldest = [...this.pending].find(([, entry]) => entry !== undefined);
      if (oldest) this.drop(oldest[0], true);
    }
  }

  /** Forgets a call; one `late` is aborted and logged (once a minute at most per publisher). */
  private drop(call: Promise<unknown>, late: boolean): void {
    const entry = this.pending.get(call);
    if (!this.pending.delete(call)) return;
    clearTimeout(entry?.timer);
    if (!late || !entry || this.abort.signal.aborted) return;
    entry.controller.abort();
    try {
      entry.late();
    } catch {
      // A log that fails must not stop the dispatch.
    }
  }

  /** A publisher failing on every transition of a flapping link is logged at most once a minute. */
  private reportOf(
    reports: Map<ConnectionHealthPublisher, CallbackReport>,
    publisher: ConnectionHealthPublisher,
    write: CallbackReport,
  ): CallbackReport {
    let report = reports.get(publisher);
    if (!report) {
      report = throttleReport(write);
      reports.set(publisher, report);
    }
    return report;
  }
}

/** What cuts a publish() at its deadline: its own signal's controller, the log line, the timer. */
interface Cut {
  readonly controller: AbortController;
  readonly late: () => void;
  readonly timer: NodeJS.Timeout;
}

function changeOf(handle: ConnectionHandle, event: StateChangeEvent): ConnectionChange {
  return {
    type: 'change',
    connection: event.name,
    kind: event.snapshot.kind,
    from: event.from,
    to: event.to,
    at: event.at,
    required: handle.required,
    reason: event.reason,
    reconnectAttempts: event.snapshot.reconnectAttempts,
  };
}

function nameOf(publisher: ConnectionHealthPublisher): string {
  return typeof publisher.name === 'string' && publisher.name ? publisher.name : (publisher.constructor?.name ?? 'publisher');
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
