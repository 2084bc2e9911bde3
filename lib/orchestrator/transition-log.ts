import type { LoggerService } from '@nestjs/common';
import type { StateChangeEvent } from '../core/connection-event.js';

export type TransitionLevel = 'debug' | 'log' | 'warn' | 'error';

/**
 * While a connection stays down, its failed reconnect attempts are logged at warn level at most this often;
 * and a connection that keeps going degraded (a busy pool, a slow link) warns about it at most this often.
 */
export const DOWN_REMINDER_MS = 60_000;

/**
 * The log of one connection's transitions: one line each, readable in text logs, with its fields as
 * structured params, which ConnectionHealthLogger keeps on that line whatever the app's logger
 * (Nest 11 or 12 ConsoleLogger, text or JSON, pino and friends).
 *
 * How loud: warn when the connection is lost, impaired, or its first connect fails; error once when it has
 * failed for good; log when it comes (back) up or closes; debug for the steps in between. A long outage
 * must not bury the log: its failed attempts are debug, with one warn-level reminder a minute; nor must a
 * connection that flaps between up and degraded: one warn a minute, the rest debug. Fatal is
 * kept for the exit of the dead-man switch and the 'exit' failure policy.
 */
export class TransitionLog {
  /** When the last warn or error line of this connection was written. */
  private lastLoudAt?: number;
  /** When the last warn-level 'degraded' line was written. */
  private lastDegradedAt?: number;
  /** The last 'degraded' line went to debug: its way back up goes there too, or the log would end on "up". */
  private degradedQuietly = false;

  constructor(private readonly logger: LoggerService) {}

  level(event: StateChangeEvent): TransitionLevel {
    switch (event.to) {
      case 'failed':
        return 'error';
      case 'degraded':
        return this.lastDegradedAt !== undefined && event.at - this.lastDegradedAt < DOWN_REMINDER_MS ? 'debug' : 'warn';
      case 'down':
        if (event.from !== 'reconnecting') return 'warn';
        return this.lastLoudAt !== undefined && event.at - this.lastLoudAt < DOWN_REMINDER_MS ? 'debug' : 'warn';
      case 'up':
        return event.from === 'degraded' && this.degradedQuietly ? 'debug' : 'log';
      case 'closed':
        return 'log';
      default:
        return 'debug';
    }
  }

  write(event: StateChangeEvent): void {
    const { name, from, to, reason, snapshot } = event;
    const level = this.level(event);
    if (level === 'warn' || level === 'error') this.lastLoudAt = event.at;
    if (level === 'warn' && event.to === 'degraded') this.lastDegradedAt = event.at;
    if (event.to === 'degraded') this.degradedQuietly = level === 'debug';
    const reminder = level === 'warn' && from === 'reconnecting';
    const line = reminder
      ? `${name}: still down after ${snapshot.reconnectAttempts} reconnect attempt(s) (${reason})`
      : `${name}: ${from} -> ${to} (${reason})`;
    const fields = { connection: name, kind: snapshot.kind, from, to, reason, attempt: snapshot.reconnectAttempts };
    this.logger[level]?.(line, fields);
  }
}
