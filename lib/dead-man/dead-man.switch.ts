import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import type { Clock, TimerHandle } from '../core/clock.js';
import { isServing } from '../core/connection-state.js';
import { CONNECTION_HEALTH_CLOCK, CONNECTION_HEALTH_OPTIONS } from '../connection-health.constants.js';
import type { ConnectionHealthModuleOptions } from '../interfaces/connection-health-options.interface.js';
import { ConnectionHealthOrchestrator } from '../orchestrator/connection-health.orchestrator.js';
import { ConnectionHealthRegistry } from '../registry/connection-health.registry.js';

/**
 * Off unless `deadMan` is set. Standalone Docker never restarts an unhealthy container, only one that exited:
 * when a required connection stays out of service (down, reconnecting or failed) for `downForMs` without a
 * break, the process exits with `exitCode` (after a fatal log line and a polite close) so the restart
 * policy brings up a fresh one. 'failed' alone does not trip it: under the 'retry' policy the connection
 * goes on trying, and only the failure policy 'exit' exits at once.
 */
@Injectable()
export class DeadManSwitch implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly timers = new Map<string, TimerHandle>();
  private readonly subscriptions: Subscription[] = [];

  constructor(
    @Inject(CONNECTION_HEALTH_OPTIONS) private readonly options: ConnectionHealthModuleOptions,
    @Inject(CONNECTION_HEALTH_CLOCK) private readonly clock: Clock,
    private readonly registry: ConnectionHealthRegistry,
    private readonly orchestrator: ConnectionHealthOrchestrator,
  ) {}

  onApplicationBootstrap(): void {
    const deadMan = this.options.deadMan;
    if (!deadMan) return;
    const exitCode = deadMan.exitCode ?? 1;
    for (const handle of this.registry.all().filter((h) => h.required)) {
      // Armed from the first moment a connection is not serving, connecting at start included, so a
      // dependency that never comes up trips it too.
      const arm = () => {
        if (this.timers.has(handle.name)) return;
        const timer = this.clock.setTimer(() => {
          this.timers.delete(handle.name);
          const reason = `Dead-man switch: "${handle.name}" has been down for ${deadMan.downForMs} ms (${handle.snapshot().reason})`;
          void this.orchestrator.exitProcess(reason, exitCode);
        }, deadMan.downForMs);
        this.timers.set(handle.name, timer);
      };
      if (!isServing(handle.state)) arm();
      const subscription = handle.events$.subscribe((event) => {
        if (event.type !== 'state' || this.orchestrator.draining) return;
        if (isServing(event.to)) this.disarm(handle.name);
        else if (event.to !== 'closing' && event.to !== 'closed') arm();
      });
      this.subscriptions.push(subscription);
    }
  }

  onModuleDestroy(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    for (const name of [...this.timers.keys()]) this.disarm(name);
  }

  private disarm(name: string): void {
    const timer = this.timers.get(name);
    if (timer === undefined) return;
    this.clock.clearTimer(timer);
    this.timers.delete(name);
  }
}
