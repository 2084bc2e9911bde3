import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectionSnapshot } from '../core/connection-snapshot.js';
import type { ConnectionState } from '../core/connection-state.js';
import { logTransition, transitionLevel } from './transition-log.js';

const snapshot = { kind: 'typeorm', reconnectAttempts: 2 } as ConnectionSnapshot;
const event = (from: ConnectionState, to: ConnectionState) =>
  ({ type: 'state', name: 'db', from, to, reason: 'why', at: 0, snapshot }) as const;

describe('transition log', () => {
  it('warns when a connection is lost, impaired or cannot connect, logs recovery, errors on failure', () => {
    const levels = (
      [
        ['idle', 'connecting'],
        ['connecting', 'up'],
        ['up', 'degraded'],
        ['degraded', 'up'],
        ['up', 'down'],
        ['degraded', 'down'],
        ['down', 'reconnecting'],
        ['reconnecting', 'down'],
        ['connecting', 'down'],
        ['reconnecting', 'up'],
        ['reconnecting', 'failed'],
        ['up', 'closing'],
        ['closing', 'closed'],
      ] as const
    ).map(([from, to]) => `${from}->${to}:${transitionLevel(event(from, to))}`);
    assert.deepEqual(levels, [
      'idle->connecting:debug',
      'connecting->up:log',
      'up->degraded:warn',
      'degraded->up:log',
      'up->down:warn',
      'degraded->down:warn',
      'down->reconnecting:debug',
      'reconnecting->down:warn',
      'connecting->down:warn',
      'reconnecting->up:log',
      'reconnecting->failed:error',
      'up->closing:debug',
      'closing->closed:log',
    ]);
  });

  it('writes one line with the structured fields', () => {
    const lines: unknown[][] = [];
    logTransition({ log: () => undefined, error: () => undefined, warn: (...args: unknown[]) => void lines.push(args) }, event('up', 'down'));
    assert.deepEqual(lines, [['db: up -> down (why)', { connection: 'db', kind: 'typeorm', from: 'up', to: 'down', reason: 'why', attempt: 2 }]]);
  });
});
