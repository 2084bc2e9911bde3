import type { SchedulerRegistry } from '@nestjs/schedule';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';

/**
 * Node's timers, with each connection's schedule timer (its next beat or reconnect attempt) registered in
 * @nestjs/schedule's SchedulerRegistry under `connection-health:<name>`: an app lists it beside its own
 * jobs, and schedule's shutdown clears it. Deadline timers stay anonymous.
 */
export class SchedulerRegistryClock implements Clock {
  readonly now = systemClock.now;

  constructor(private readonly registry: SchedulerRegistry) {}

  setTimer(callback: () => void, delayMs: number, name?: string): TimerHandle {
    const handle = setTimeout(() => {
      if (name) this.forget(name, handle);
      callback();
    }, delayMs);
    if (name) {
      this.forget(name);
      this.registry.addTimeout(name, handle);
    }
    return handle;
  }

  clearTimer(handle: TimerHandle, name?: string): void {
    clearTimeout(handle as NodeJS.Timeout);
    if (name) this.forget(name, handle);
  }

  /** Removes the registry entry, unless it now holds another timer (the app may have replaced it). */
  private forget(name: string, handle?: TimerHandle): void {
    if (!this.registry.doesExist('timeout', name)) return;
    if (handle === undefined || this.registry.getTimeout(name) === handle) this.registry.deleteTimeout(name);
  }
}
