import { Logger, type LoggerService } from '@nestjs/common';
import { isServing } from '../core/connection-state.js';
import { changeText } from './change-text.js';
import type { ConnectionChange } from './connection-change.js';
import type { ConnectionHealthPublisher } from './connection-health-publisher.interface.js';
import { ATTACH_PUBLISHER, type PublisherEnvironment } from './publisher-internals.js';

export interface LogPublisherOptions {
  /** Where the lines go. Default the package's logger (context 'ConnectionHealth', secrets scrubbed). */
  logger?: LoggerService;
}

/**
 * One log line per transition: 'warn' when a connection is lost (down, reconnecting), 'error' when it failed
 * for good, 'log' for the rest (connecting, up, degraded, a close on purpose). Reasons come scrubbed, as
 * every event's.
 */
export class LogPublisher implements ConnectionHealthPublisher {
  readonly name = 'log';
  #logger: LoggerService;
  readonly #given: boolean;

  constructor(options: LogPublisherOptions = {}) {
    this.#given = options.logger !== undefined;
    this.#logger = options.logger ?? new Logger('ConnectionHealth');
  }

  publish(change: ConnectionChange): void {
    const line = changeText(change);
    if (isServing(change.to) || change.to === 'connecting' || change.to === 'closing' || change.to === 'closed') this.#logger.log(line);
    else if (change.to === 'failed') this.#logger.error(line);
    else this.#logger.warn(line);
  }

  [ATTACH_PUBLISHER]({ logger }: PublisherEnvironment): void {
    if (!this.#given) this.#logger = logger;
  }
}
