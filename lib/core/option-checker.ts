import { ConnectionHealthConfigError } from './errors/connection-health-config.error.js';
import { messages } from './messages.js';

/** Node clamps longer timer delays to 1 ms with a warning: a typo in minutes would beat in a busy loop. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Checks option values, throwing a ConnectionHealthConfigError that names connection, option, value and fix. */
export class OptionChecker {
  constructor(private readonly connection: string) {}

  that(ok: boolean, option: string, value: unknown, fix: string): void {
    if (!ok) {
      throw new ConnectionHealthConfigError(
        messages.invalidOption(this.connection, option, value, fix),
        this.connection,
        option,
        value,
      );
    }
  }

  duration(option: string, value: unknown): void {
    this.that(
      typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= MAX_TIMER_MS,
      option,
      value,
      `Use a number of milliseconds above 0 and at most ${MAX_TIMER_MS} (Node's timer limit, about 24.8 days).`,
    );
  }

  count(option: string, value: unknown, alternative = ''): void {
    this.that(
      typeof value === 'number' && Number.isInteger(value) && value >= 1,
      option,
      value,
      `Use a whole number of at least 1${alternative ? ` ${alternative}` : ''}.`,
    );
  }

  ratio(option: string, value: unknown, max: number): void {
    this.that(
      typeof value === 'number' && value >= 0 && value <= max,
      option,
      value,
      `Use a fraction from 0 to ${max}.`,
    );
  }

  exitCode(option: string, value: unknown): void {
    this.that(
      Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 255,
      option,
      value,
      'Use an integer from 1 to 255: exit code 0 would tell the orchestrator all went well.',
    );
  }

  text(option: string, value: unknown): void {
    this.that(typeof value === 'string' && value.trim() !== '', option, value, 'Use a non-empty string.');
  }

  fn(option: string, value: unknown, required: boolean, shape: string): void {
    this.that(
      typeof value === 'function' || (!required && value === undefined),
      option,
      value,
      `Pass a function ${shape}${required ? '' : ', or leave it out'}.`,
    );
  }

  oneOf(option: string, value: unknown, allowed: readonly unknown[], optional = true): void {
    this.that(
      allowed.includes(value) || (optional && value === undefined),
      option,
      value,
      `Use one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}.`,
    );
  }

  knownKeys(group: string, given: object | undefined, known: readonly string[]): void {
    if (given === undefined) return;
    this.that(
      typeof given === 'object' && given !== null,
      group,
      given,
      `Use an object with some of: ${known.join(', ')}.`,
    );
    for (const key of Object.keys(given)) {
      this.that(
        known.includes(key),
        `${group}.${key}`,
        (given as Record<string, unknown>)[key],
        `There is no such option; ${group} takes ${known.join(', ')}.`,
      );
    }
  }
}
