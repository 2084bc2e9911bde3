import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectionSnapshot } from '../core/connection-snapshot.js';
import type { ConnectionState } from '../core/connection-state.js';
import { TransitionLog } from './transition-log.js';

const snapshot = { kind: 'typeorm', reconnectAttempts: 2 } as ConnectionSnapshot;
const event = (from: ConnectionState, to: ConnectionState, at = 0) =>
  ({ type: 'state', name: 'db', from, to, reason: 'why', at, snapshot }) as const;

/** A logger that records the level and the arguments of each line. */
function recorder() {
  const lines: Array<[string, ...unknown[]]> = [];
  const at = (level: string) => (...args: unknown[]) => void lines.push([level, ...args]);
  return { lines, logger: { log: at('log'), warn: at('warn'), error: at('error'), debug: at('debug') } };
}

describe('transition log', () => {
  it('warns when a connection is lost, impaired or cannot connect, logs recovery, errors on failure', () => {
    const log = new TransitionLog(recorder().logger);
    const levels = (
      [
        ['idle', 'connecting'],
        ['connecting', 'down'],
        ['down', 'reconnecting'],
        ['reconnecting', 'up'],
        ['up', 'degraded'],
        ['degraded', 'up'],
        ['up', 'down'],
        ['degraded', 'down'],
        ['reconnecting', 'failed'],
        ['failed', 'up'],
        ['up', 'closing'],
        ['closing', 'closed'],
      ] as const
    ).map(([from, to]) => {
      const e = event(from, to);
      const level = log.level(e);
      log.write(e);
      return `${from}->${to}:${level}`;
    });
    assert.deepEqual(levels, [
      'idle->connecting:debug',
      'connecting->down:warn',
      'down->reconnecting:debug',
      'reconnecting->up:log',
      'up->degraded:warn',
      'degraded->up:log',
      'up->down:warn',
      'degraded->down:warn',
      'reconnecting->failed:error',
      'failed->up:log',
      'up->closing:debug',
      'closing->closed:log',
    ]);
  });

  it('logs the failed attempts of a long outage at debug, with one warn-level reminder a minute', () => {
    const { lines, logger } = recorder();
    const log = new TransitionLog(logger);
    log.write(event('up', 'down', 0));
    // A ten-minute outage with an attempt every 5 s.
    for (let at = 5_000; at <= 600_000; at += 5_000) {
      log.write(event('down', 'reconnecting', at));
      log.write(event('reconnecting', 'down', at + 100));
    }
    const loud = lines.filter(([level]) => level === 'warn' || level === 'error');
    assert.equal(loud.length, 1 + 10, 'the loss, then one reminder a minute');
    assert.match(String(loud[1]?.[1]), /^db: still down after 2 reconnect attempt\(s\) \(why\)$/);
    assert.equal(lines.filter(([level]) => level === 'debug').length, 2 * 120 - 10);
  });

  it('warns about a connection that flaps between up and degraded once a minute', () => {
    const { lines, logger } = recorder();
    const log = new TransitionLog(logger);
    for (let at = 0; at < 120_000; at += 2_000) {
      log.write(event('up', 'degraded', at));
      log.write(event('degraded', 'up', at + 1_000));
    }
    assert.equal(lines.filter(([level]) => level === 'warn').length, 2);
    // Each warned 'degraded' is followed by its 'up' at log level; the quiet ones' way back up stays quiet too.
    assert.equal(lines.filter(([level]) => level === 'log').length, 2);
  });

  it('writes one line with the structured fields', () => {
    const { lines, logger } = recorder();
    new TransitionLog(logger).write(event('up', 'down'));
    assert.deepEqual(lines, [['warn', 'db: up -> down (why)', { connection: 'db', kind: 'typeorm', from: 'up', to: 'down', reason: 'why', attempt: 2 }]]);
  });
});
