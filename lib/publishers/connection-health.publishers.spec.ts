import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { Subject } from 'rxjs';
import type { ConnectionEvent } from '../core/connection-event.js';
import { SecretScrubber } from '../core/secret-scrubber.js';
import type { ConnectionHealthLogger } from '../logging/connection-health.logger.js';
import type { ConnectionHealthRegistry } from '../registry/connection-health.registry.js';
import type { ConnectionHealthPublisher, PublishContext } from './connection-health-publisher.interface.js';
import { ConnectionHealthPublishers, MAX_PENDING, PUBLISH_DEADLINE_MS } from './connection-health.publishers.js';

/** The registry of one connection whose events the test emits, and every line the publishers log. */
function publishersOf(publishers: ConnectionHealthPublisher[]) {
  const events$ = new Subject<ConnectionEvent>();
  const logged: string[] = [];
  const handle = { name: 'db', required: true, events$, snapshot: () => ({ kind: 'tcp', reconnectAttempts: 0 }) };
  const registry = { all: () => [handle], reportCallbackFailure: (_error: unknown, message: string) => void logged.push(message) };
  const logger = { warn: (message: string) => void logged.push(message), log: () => undefined, error: (message: string) => void logged.push(message) };
  const subject = new ConnectionHealthPublishers(
    { publishers },
    registry as unknown as ConnectionHealthRegistry,
    new SecretScrubber(),
    logger as unknown as ConnectionHealthLogger,
  );
  subject.onModuleInit();
  subject.onApplicationBootstrap();
  let n = 0;
  const emit = () => {
    const down = n++ % 2 === 0;
    events$.next({
      type: 'state',
      name: 'db',
      from: down ? 'up' : 'down',
      to: down ? 'down' : 'up',
      at: Date.now(),
      reason: 'connect ECONNREFUSED 10.0.0.7:5432',
      snapshot: { kind: 'tcp', reconnectAttempts: 0 },
    } as unknown as ConnectionEvent);
  };
  return { subject, emit, logged, pending: () => (subject as unknown as { pending: { size: number } }).pending.size };
}

/** A value String() cannot convert, as some RPC and validation libraries reject with. */
const oddValue = () => Object.assign(Object.create(null) as object, { code: 'E_REMOTE', detail: 'quota exceeded' });

describe('ConnectionHealthPublishers (engine unit)', () => {
  it('a publisher that throws or rejects a value String() cannot convert is logged; the publishers after it are still called', async () => {
    const got: string[] = [];
    const { emit, logged } = publishersOf([
      {
        name: 'thrower',
        publish: () => {
          throw oddValue();
        },
      },
      { name: 'rejecter', publish: () => Promise.reject(oddValue()) },
      { name: 'recorder', publish: (change) => void got.push(change.to) },
    ]);
    emit();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(got, ['down'], 'the publisher after the thrower is called');
    assert.ok(logged.some((line) => /^Publisher "thrower" threw on a change of connection "db" \(\[object Object\]\)/.test(line)), logged.join('\n'));
    assert.ok(logged.some((line) => /^Publisher "rejecter" rejected on a change of connection "db" \(\[object Object\]\)/.test(line)), logged.join('\n'));
  });

  it('a publish() that never settles is logged once at its deadline, its signal aborted, and dropped; pending stays bounded', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const signals: AbortSignal[] = [];
    const { emit, logged, pending } = publishersOf([
      {
        name: 'pager',
        publish: (_change, { signal }: PublishContext) => {
          signals.push(signal);
          return new Promise(() => undefined);
        },
      },
    ]);
    emit();
    assert.equal(pending(), 1);
    t.mock.timers.tick(PUBLISH_DEADLINE_MS);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(pending(), 0, 'dropped at its deadline');
    assert.equal(signals[0]!.aborted, true, 'its signal aborted');
    const lines = logged.filter((line) => line.includes('"pager"'));
    assert.equal(lines.length, 1, logged.join('\n'));
    assert.match(lines[0]!, new RegExp(`^Publisher "pager" did not settle within ${PUBLISH_DEADLINE_MS} ms on a change of connection "db"`));
    // A link flapping faster than the deadline: at most MAX_PENDING calls are kept.
    for (let i = 0; i < MAX_PENDING + 50; i++) emit();
    assert.equal(pending(), MAX_PENDING);
    assert.equal(signals.filter((signal) => signal.aborted).length, 51, 'the oldest dropped are aborted');
    mock.timers.reset();
  });
});
