import type { LoggerService } from '@nestjs/common';
import type { StateChangeEvent } from '../core/connection-event.js';

export type TransitionLevel = 'debug' | 'log' | 'warn' | 'error';

/**
 * How loud a transition is: warn when a connection is lost or impaired, or a connect attempt fails; log
 * when it comes (back) up or closes; error when it has failed for good; debug for the steps in between. Fatal is kept for the exit of the dead-man switch and the 'exit' failure policy.
 */
export function transitionLevel(event: StateChangeEvent): TransitionLevel {
  switch (event.to) {
    case 'failed':
      return 'error';
    case 'down':
    case 'degraded':
      return 'warn';
    case 'up':
    case 'closed':
      return 'log';
    default:
      return 'debug';
  }
}

/**
 * One line per transition: readable in text logs, and with its fields as structured params for JSON
 * loggers (ConsoleLogger({ json: true }), pino and friends).
 */
export function logTransition(logger: LoggerService, event: StateChangeEvent): void {
  const { name, from, to, reason, snapshot } = event;
  const fields = { connection: name, kind: snapshot.kind, from, to, reason, attempt: snapshot.reconnectAttempts };
  const line = `${name}: ${from} -> ${to} (${reason})`;
  const level = transitionLevel(event);
  logger[level]?.(line, fields);
}
