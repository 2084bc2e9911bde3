import type { OnModuleDestroy } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import type { Subscription } from 'rxjs';
import type { Clock } from '../core/clock.js';
import type { SecretScrubber } from '../core/secret-scrubber.js';
import type { ConnectionHealthProbes } from '../health/connection-health.probes.js';
import type { HealthDetailLevel } from '../interfaces/health-controller-options.interface.js';
import type { ConnectionHandle } from '../registry/connection-handle.js';
import type { ConnectionHealthRegistry } from '../registry/connection-health.registry.js';
import { ConnectionHistory } from './connection-history.js';
import { StatusPageView } from './status-page.view.js';
import { DEFAULT_STREAM_LIMITS, sseEvent, type StatusPageStreamLimits, StatusPageStreams } from './status-page.streams.js';

/**
 * At most one view per this long, however many events came in it: every heartbeat of every connection is an
 * event, and a render per event would cost N renders of N connections a second while somebody watches.
 */
const VIEW_INTERVAL_MS = 500;

/**
 * The live status page (`healthController.ui`): keeps each connection's recent history from its registration, renders
 * the page, and pushes a new view to the open streams after events, at most once per VIEW_INTERVAL_MS. Provided
 * only when `ui` is on. While nobody watches it only records events (a ring of RTTs, the hour's transitions):
 * no timer, no rendering.
 */
export class ConnectionHealthStatusPage implements OnModuleDestroy {
  private readonly histories = new Map<string, ConnectionHistory>();
  private readonly subscriptions: Subscription[] = [];
  private readonly view: StatusPageView;
  private readonly streams: StatusPageStreams;
  private viewTimer?: NodeJS.Timeout;

  constructor(
    private readonly registry: ConnectionHealthRegistry,
    probes: ConnectionHealthProbes,
    scrubber: SecretScrubber,
    private readonly details: HealthDetailLevel,
    /** The monitors' clock, so that the hour of the timeline is theirs (fake time in an app's tests). */
    private readonly clock: Clock,
    limits: StatusPageStreamLimits = DEFAULT_STREAM_LIMITS,
  ) {
    this.view = new StatusPageView(probes, scrubber, details);
    this.streams = new StatusPageStreams(limits);
    this.subscriptions.push(registry.registered$.subscribe((handle) => this.watch(handle)));
  }

  /** The whole page as it is now. */
  html(): string {
    return this.view.page(this.registry.all(), this.histories, this.clock.now());
  }

  /** Serves the live stream on a raw response (Express' `res`, Fastify's `reply.raw`, node:http's). */
  stream(response: ServerResponse): void {
    this.streams.accept(response, () => this.frame());
  }

  /** Streams end in the module's own hook, beside the drain rather than after it, and are awaited until closed. */
  async onModuleDestroy(): Promise<void> {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.subscriptions.length = 0;
    clearTimeout(this.viewTimer);
    await this.streams.close();
  }

  /** From each connection's registration on, so that the timeline holds its first transitions too. */
  private watch(handle: ConnectionHandle): void {
    // At 'none' the page shows the overall status only: no history is worth keeping.
    const history = this.details === 'none' ? undefined : new ConnectionHistory();
    if (history) this.histories.set(handle.name, history);
    this.subscriptions.push(
      handle.events$.subscribe((event) => {
        history?.record(event);
        this.changed();
      }),
    );
  }

  /** Sends the view as it is VIEW_INTERVAL_MS after the first event since the last one sent; nothing while nobody watches. */
  private changed(): void {
    if (this.streams.size === 0 || this.viewTimer !== undefined) return;
    this.viewTimer = setTimeout(() => {
      this.viewTimer = undefined;
      if (this.streams.size > 0) this.streams.send(this.frame());
    }, VIEW_INTERVAL_MS);
    this.viewTimer.unref();
  }

  private frame(): string {
    return sseEvent('view', this.view.view(this.registry.all(), this.histories, this.clock.now()));
  }
}
