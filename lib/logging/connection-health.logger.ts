import type { LoggerService } from '@nestjs/common';
import type { SecretScrubber } from '../core/secret-scrubber.js';
import { OneLineLogger } from './one-line.logger.js';

/**
 * The package's one way to log: Nest's Logger under the 'ConnectionHealth' context, so every line goes to
 * the logger the app installed (text, JSON, pino), with the message and every structured field scrubbed of
 * the app's secrets first. The scrubber is private: inspecting the logger shows nothing of them. A line's
 * structured fields stay on that line whatever the logger (see OneLineLogger).
 */
export class ConnectionHealthLogger implements LoggerService {
  readonly #logger = new OneLineLogger('ConnectionHealth');
  readonly #scrubber: SecretScrubber;

  constructor(scrubber: SecretScrubber) {
    this.#scrubber = scrubber;
  }

  log(message: unknown, ...fields: unknown[]): void {
    this.#write('log', message, fields);
  }

  error(message: unknown, ...fields: unknown[]): void {
    this.#write('error', message, fields);
  }

  warn(message: unknown, ...fields: unknown[]): void {
    this.#write('warn', message, fields);
  }

  debug(message: unknown, ...fields: unknown[]): void {
    this.#write('debug', message, fields);
  }

  verbose(message: unknown, ...fields: unknown[]): void {
    this.#write('verbose', message, fields);
  }

  fatal(message: unknown, ...fields: unknown[]): void {
    this.#write('fatal', message, fields);
  }

  #write(level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal', message: unknown, params: unknown[]): void {
    this.#logger[level](this.#scrubber.scrubDeep(message), ...params.map((param) => this.#scrubber.scrubDeep(param)));
  }
}
