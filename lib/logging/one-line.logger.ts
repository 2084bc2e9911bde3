import { inspect } from 'node:util';
import { ConsoleLogger, Logger, type LoggerService } from '@nestjs/common';

const LEVELS = ['log', 'error', 'warn', 'debug', 'verbose', 'fatal'] as const;

/** What a ConsoleLogger keeps of its options and how it splits its arguments; not in its public types. */
interface ConsoleLoggerInternals {
  options?: { json?: boolean };
  getContextAndMessagesToPrint?: (args: unknown[]) => { params?: unknown };
}

/**
 * nestjs-pino's Logger, by its shape (the package is no peer of ours): a PinoLogger inside, with the
 * assign() only it has. It hands params after the message to pino as printf arguments, which drops an
 * object without a placeholder; an object message it merges into the record.
 */
function isNestjsPino(target: LoggerService): boolean {
  const candidate = target as { contextName?: unknown; logger?: { assign?: unknown } };
  return typeof candidate.contextName === 'string' && typeof candidate.logger?.assign === 'function';
}

/** A plain object after the message is a set of fields, as Nest 12's ConsoleLogger reads it; a context or a stack string is not. */
function isFields(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

/** The message and its fields in the shape `target` prints on one line, then the other params (the context). */
function fit(target: LoggerService, level: (typeof LEVELS)[number], message: unknown, params: unknown[]): [unknown, ...unknown[]] {
  const fields = params.filter(isFields);
  if (fields.length === 0 || typeof message !== 'string') return [message, ...params];
  const merged = Object.assign({}, ...fields) as Record<string, unknown>;
  const rest = params.filter((param) => !isFields(param));
  if (isNestjsPino(target)) return [{ msg: message, ...merged }, ...rest];
  // Any other LoggerService gets Nest's own contract, as before: a string message, the fields as a param.
  // Only Nest's own printing is reshaped: a subclass that overrides the level (to ship the fields elsewhere,
  // say) gets them as a param, as any other LoggerService does.
  if (!(target instanceof ConsoleLogger) || target[level] !== ConsoleLogger.prototype[level]) return [message, ...params];
  const internals = target as unknown as ConsoleLoggerInternals;
  // Asked rather than told by the version: Nest 12 takes a plain object as params unless structuredParams is false.
  if (internals.getContextAndMessagesToPrint?.call(target, [message, {}])?.params !== undefined) return [message, merged, ...rest];
  // `message` stays a string, as on the app's own lines: a log store that maps fields by their first value
  // (Elasticsearch, OpenSearch) would refuse whichever of string and object came second.
  if (internals.options?.json) return [`${message} ${JSON.stringify(merged)}`, ...rest];
  return [`${message} ${inspect(merged, { colors: false, compact: true, breakLength: Infinity })}`, ...rest];
}

/**
 * Nest's Logger, but a line with fields (plain objects after the message) stays one line, in the shape the
 * app's logger keeps fields in. A ConsoleLogger that takes them as params (Nest 12) gets them so; one that
 * does not (Nest 11, or `structuredParams: false`) would print them as a second, multi-line record, so they
 * are folded into the message: in text mode as Nest 12 prints them, in JSON mode as JSON text after it.
 * nestjs-pino gets an object `{ msg, ...fields }`, and writes the fields beside `msg`.
 * Any other LoggerService gets what Nest's contract says and what it got before: the string message, then
 * the fields as a param (a logger that prints only the message still reads the whole transition).
 *
 * Decided where Logger hands the line over (`localInstance`), not where it is written: a line logged while
 * Nest buffers the logs (`bufferLogs`) goes to the app's logger later, and must fit that one.
 */
export class OneLineLogger extends Logger {
  override get localInstance(): LoggerService {
    const target = super.localInstance as LoggerService | undefined;
    if (target === undefined) return target as unknown as LoggerService; // `logger: false`: Logger writes nothing
    const fitted: Partial<Record<(typeof LEVELS)[number], (message: unknown, ...params: unknown[]) => void>> = {};
    for (const level of LEVELS) {
      const write = target[level];
      if (write) fitted[level] = (message, ...params) => void write.call(target, ...fit(target, level, message, params));
    }
    return fitted as LoggerService;
  }
}
