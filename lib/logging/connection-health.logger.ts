import { Logger, type LoggerService } from '@nestjs/common';
import type { SecretScrubber } from '../core/secret-scrubber.js';

/**
 * The package's one way to log: Nest's Logger under the 'ConnectionHealth' context, so every line goes to
 * the logger the app installed (text, JSON, pino), with the message and every structured field scrubbed of
 * the app's secrets first. The scrubber is private: inspecting the logger shows nothing of them.
 */
export class ConnectionHealthLogger implements LoggerService {
  readonly #logger = new Logger('ConnectionHealth');
  readonly #scrubber: SecretScrubber;

  constructor(scrubber: SecretScrubber) {
    this.#scrubber = scrubber;
  }

  log(message: unknown, ...fields: unknown[]): void {
    this.#logger.log(...this.#scrubbed(message, fields));
  }

  error(message: unknown, ...fields: unknown[]): void {
    this.#logger.error(...this.#scrubbed(message, fields));
  }

  warn(message: unknown, ...fields: unknown[]): void {
    this.#logger.warn(...this.#scrubbed(message, fields));
  }

  debug(message: unknown, ...fields: unknown[]): void {
    this.#logger.debug(...this.#scrubbed(message, fields));
  }

  verbose(message: unknown, ...fields: unknown[]): void {
    this.#logger.verbose(...this.#scrubbed(message, fields));
  }

  fatal(message: unknown, ...fields: unknown[]): void {
    this.#logger.fatal(...this.#scrubbed(message, fields));
  }

  #scrubbed(message: unknown, fields: unknown[]): [unknown, ...unknown[]] {
    return [this.#scrubber.scrubDeep(message), ...fields.map((field) => this.#scrubber.scrubDeep(field))];
  }
}
