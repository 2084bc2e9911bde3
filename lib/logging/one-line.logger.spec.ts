import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ConsoleLogger, Logger, type LoggerService } from '@nestjs/common';
import { OneLineLogger } from './one-line.logger.js';

const FIELDS = { connection: 'db', kind: 'typeorm', from: 'up', to: 'down', reason: 'timeout', attempt: 0 };

/** What the app's logger printed to stdout and stderr while `write` ran. */
function printed(logger: LoggerService, write: () => void): string[] {
  Logger.overrideLogger(logger);
  const out: string[] = [];
  const streams = [process.stdout, process.stderr] as const;
  const originals = streams.map((stream) => stream.write);
  for (const stream of streams) stream.write = ((chunk: string) => out.push(String(chunk)) > 0) as typeof stream.write;
  try {
    write();
  } finally {
    streams.forEach((stream, index) => (stream.write = originals[index]!));
  }
  return out.join('').split('\n').filter((line) => line !== '');
}

describe('OneLineLogger', () => {
  afterEach(() => Logger.overrideLogger(true));

  it('a ConsoleLogger with structuredParams: false (as Nest 11 does) gets the fields folded into the text line', () => {
    const lines = printed(new ConsoleLogger({ structuredParams: false, colors: false }), () => new OneLineLogger('ConnectionHealth').warn('db: up -> down (timeout)', FIELDS));
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /WARN \[ConnectionHealth\] db: up -> down \(timeout\) \{ connection: 'db', kind: 'typeorm', from: 'up', to: 'down', reason: 'timeout', attempt: 0 \}$/);
  });

  it('in JSON mode with structuredParams: false, the message stays a string, the fields as JSON text at its end', () => {
    const lines = printed(new ConsoleLogger({ json: true, structuredParams: false }), () => new OneLineLogger('ConnectionHealth').error('db: failed', FIELDS));
    assert.equal(lines.length, 1, lines.join('\n'));
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(record.context, 'ConnectionHealth');
    assert.equal(record.message, `db: failed ${JSON.stringify(FIELDS)}`);
  });

  it('any other LoggerService gets the string message, the fields and the context as before; a stack string passes as it was', () => {
    const calls: unknown[][] = [];
    const record = (...args: unknown[]) => void calls.push(args);
    Logger.overrideLogger({ log: record, error: record, warn: record });
    const logger = new OneLineLogger('ConnectionHealth');
    logger.warn('db: up -> down (timeout)', FIELDS);
    logger.error('a subscriber threw', 'Error: boom\n    at x');
    logger.log('plain');
    logger.debug('db: idle -> connecting', FIELDS); // the app's logger has no debug: nothing, and no throw
    assert.deepEqual(calls, [
      ['db: up -> down (timeout)', FIELDS, 'ConnectionHealth'],
      ['a subscriber threw', 'Error: boom\n    at x', 'ConnectionHealth'],
      ['plain', 'ConnectionHealth'],
    ]);
  });

  it("a ConsoleLogger subclass that overrides a level (to ship the fields elsewhere) gets the fields as a param, not folded", () => {
    const calls: unknown[][] = [];
    class ShippingLogger extends ConsoleLogger {
      override warn(message: unknown, ...params: unknown[]): void {
        calls.push([message, ...params]);
      }
    }
    printed(new ShippingLogger({ structuredParams: false, colors: false }), () => new OneLineLogger('ConnectionHealth').warn('db: up -> down (timeout)', FIELDS));
    assert.deepEqual(calls, [['db: up -> down (timeout)', FIELDS, 'ConnectionHealth']]);
  });

  it('with logging turned off (logger: false) it writes nothing and does not throw', () => {
    const lines = printed(false as unknown as LoggerService, () => new OneLineLogger('ConnectionHealth').warn('db: up -> down', FIELDS));
    assert.deepEqual(lines, []);
  });
});
