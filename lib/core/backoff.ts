import type { ReconnectOptions } from './monitor-options.js';

/**
 * Delay before reconnect attempt `attempt` (1-based): exponential from `initialDelayMs`, capped at
 * `maxDelayMs`, then shortened by up to `jitter` of itself so that instances that lost the same server
 * do not come back in one wave.
 */
export function backoffDelay(
  attempt: number,
  options: Pick<ReconnectOptions, 'initialDelayMs' | 'maxDelayMs' | 'factor' | 'jitter'>,
  random: () => number,
): number {
  const exponential = options.initialDelayMs * options.factor ** Math.max(0, attempt - 1);
  const capped = Math.min(options.maxDelayMs, exponential);
  return capped * (1 - options.jitter * random());
}
