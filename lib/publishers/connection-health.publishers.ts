import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import type { StateChangeEvent } from '../core/connection-event.js';
import { messages } from '../core/messages.js';
import { SecretScrubber } from '../core/secret-scrubber.js';
import { throttleReport, type CallbackFailure } from '../core/user-callback.js';
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
  private readonly pending = new Set<Promise<unknown>>();
  private readonly reports = new Map<ConnectionHealthPublisher, ReturnType<typeof throttleReport>>();
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
    if (this.publishers.length === 0) return;
    const context = { signal: this.abort.signal };
    for (const publisher of this.publishers) {
      if (typeof publisher.flush !== 'function') continue;
      const report = (how: CallbackFailure, error: unknown) =>
        this.registry.reportCallbackFailure(error, messages.publisherFlushFailed(nameOf(publisher), how, this.scrubber.describe(error)));
      this.track(report, () => publisher.flush!(context));
    }
    const spent = this.closingSince === undefined ? 0 : Date.now() - this.closingSince;
    const boundMs = Math.max(0, Math.min(MAX_FLUSH_MS, this.shutdownTimeoutMs - spent));
    let timer: NodeJS.Timeout | undefined;
    const settled = Promise.allSettled([...this.pending]).then(() => true);
    const cut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), boundMs)));
    const done = await Promise.race([settled, cut]);
    clearTimeout(timer);
    if (!done) this.logger.warn(messages.publishersCutAtShutdown(this.pending.size, boundMs));
    this.abort.abort();
    for (const subscription of this.subscriptions) subscription.unsubscribe();
  }

  private dispatch(change: ConnectionChange): void {
    if (change.to === 'closing' && this.closingSince === undefined) this.closingSince = Date.now();
    const context = { signal: this.abort.signal };
    if (context.signal.aborted) return;
    for (const publisher of this.publishers) {
      const report = this.reportOf(publisher);
      const onFailure = (how: CallbackFailure, error: unknown) =>
        report(error, messages.publisherFailed(nameOf(publisher), change.connection, how, this.scrubber.describe(error)));
      this.track(onFailure, () => publisher.publish(change, context));
    }
  }

  /** Calls a publisher so that nothing it does escapes; a promise it returns is kept until it settles, for the flush at shutdown. */
  private track(onFailure: (how: CallbackFailure, error: unknown) => void, call: () => unknown): void {
    let result: unknown;
    try {
      result = call();
    } catch (error) {
      onFailure('threw', error);
      return;
    }
    if (!isThenable(result)) return;
    const settled = Promise.resolve(result).then(
      () => undefined,
      (error: unknown) => {
        if (!this.abort.signal.aborted) onFailure('rejected', error);
      },
    );
    this.pending.add(settled);
    void settled.finally(() => this.pending.delete(settled));
  }

  /** A publisher failing on every transition of a flapping link is logged at most once a minute. */
  private reportOf(publisher: ConnectionHealthPublisher): ReturnType<typeof throttleReport> {
    let report = this.reports.get(publisher);
    if (!report) {
      report = throttleReport(this.registry.reportCallbackFailure);
      this.reports.set(publisher, report);
    }
    return report;
  }
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
