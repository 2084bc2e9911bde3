import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command, Redis } from 'ioredis';
import { awaitsOnly, endRejectsOnlyHandled, isBlocked, isEcho, redisTarget } from './redis-commands.js';
import type { RedisLike } from './redis-like.js';

type Queued = [string, Array<string | number>, ((error?: Error | null, reply?: unknown) => void)?];

/** A client that never connects, with these commands in one of its queues, as ioredis queues them. */
function clientHolding(queueName: 'commandQueue' | 'offlineQueue', ...commands: Queued[]): RedisLike {
  const client = new Redis({ lazyConnect: true });
  const queue = (client as unknown as Record<string, { push(item: unknown): void }>)[queueName]!;
  for (const [name, args, callback] of commands) queue.push({ command: new Command(name, args, {}, callback), select: 0 });
  return client as unknown as RedisLike;
}

/** A client that never connects, with these commands awaiting their replies. */
const clientAwaiting = (...commands: Queued[]) => clientHolding('commandQueue', ...commands);

describe('isBlocked', () => {
  it('sees a blocking command anywhere among those awaiting a reply', () => {
    assert.equal(isBlocked(clientAwaiting(['blpop', ['jobs', 0]])), true);
    assert.equal(isBlocked(clientAwaiting(['get', ['a']], ['bzpopmin', ['z', 5]], ['set', ['b', 1]])), true);
    assert.equal(isBlocked(clientAwaiting(['blmove', ['a', 'b', 'LEFT', 'RIGHT', 0]])), true);
    assert.equal(isBlocked(clientAwaiting(['wait', [1, 0]])), true);
  });

  it('counts XREAD and XREADGROUP as blocking only with BLOCK', () => {
    assert.equal(isBlocked(clientAwaiting(['xread', ['BLOCK', 0, 'STREAMS', 's', '$']])), true);
    assert.equal(isBlocked(clientAwaiting(['xreadgroup', ['GROUP', 'g', 'c', 'block', 100, 'STREAMS', 's', '>']])), true);
    assert.equal(isBlocked(clientAwaiting(['xread', ['COUNT', 10, 'STREAMS', 's', '0']])), false);
  });

  it('reads an idle client, or one without a queue it knows, as not blocked', () => {
    assert.equal(isBlocked(clientAwaiting()), false);
    assert.equal(isBlocked(clientAwaiting(['get', ['a']], ['subscribe', ['news']])), false);
    assert.equal(isBlocked({ status: 'ready' } as unknown as RedisLike), false);
  });
});

describe('awaitsOnly', () => {
  const ours = (name: string, args: readonly unknown[]) => name === 'ping' && String(args[0]).startsWith('connection-health-x-');

  it('is true when nothing, or only our own PINGs, await a reply', () => {
    assert.equal(awaitsOnly(clientAwaiting(), ours), true);
    assert.equal(awaitsOnly(clientAwaiting(['ping', ['connection-health-x-1']], ['ping', ['connection-health-x-2']]), ours), true);
  });

  it("is false as soon as one of the app's commands awaits a reply, or the queue cannot be read", () => {
    assert.equal(awaitsOnly(clientAwaiting(['ping', ['connection-health-x-1']], ['set', ['big', 'value']]), ours), false);
    assert.equal(awaitsOnly(clientAwaiting(['incr', ['n']]), ours), false);
    assert.equal(awaitsOnly(clientAwaiting(['ping', ['app-ping']]), ours), false);
    assert.equal(awaitsOnly({ status: 'ready' } as unknown as RedisLike, ours), false);
  });
});

describe('endRejectsOnlyHandled', () => {
  const ours = (name: string, args: readonly unknown[]) => name === 'ping' && String(args[0]).startsWith('connection-health-x-');
  const callback = () => undefined;

  it('is true when every command either queue holds is ours or has a callback (emit()\'s PUBLISH)', () => {
    assert.equal(endRejectsOnlyHandled(clientAwaiting(), ours), true);
    assert.equal(endRejectsOnlyHandled(clientAwaiting(['ping', ['connection-health-x-1']], ['publish', ['orders', '{}'], callback]), ours), true);
    assert.equal(endRejectsOnlyHandled(clientHolding('offlineQueue', ['subscribe', ['orders.reply'], callback]), ours), true);
  });

  it('is false for a command without a callback in either queue (ClientRedis\' UNSUBSCRIBE), or a queue it cannot read', () => {
    assert.equal(endRejectsOnlyHandled(clientAwaiting(['ping', ['connection-health-x-1']], ['unsubscribe', ['orders.reply']]), ours), false);
    assert.equal(endRejectsOnlyHandled(clientHolding('offlineQueue', ['publish', ['orders', '{}']]), ours), false);
    assert.equal(endRejectsOnlyHandled({ status: 'ready' } as unknown as RedisLike, ours), false);
  });
});

describe('isEcho', () => {
  it('takes the token itself, or ["pong", token] in SUBSCRIBE mode', () => {
    assert.equal(isEcho('t-1', 't-1'), true);
    assert.equal(isEcho(['pong', 't-1'], 't-1'), true);
    assert.equal(isEcho([Buffer.from('pong'), Buffer.from('t-1')], 't-1'), true);
  });

  it('refuses any other reply: the answer of another command, or of another PING', () => {
    for (const reply of ['PONG', 't-2', 'OK', null, 1, ['message', 't-1'], ['pong', 't-2'], ['t-1']]) {
      assert.equal(isEcho(reply, 't-1'), false, JSON.stringify(reply));
    }
  });
});

describe('redisTarget', () => {
  it('names host:port, a unix socket or the Sentinel master, never a credential', () => {
    assert.equal(redisTarget({ host: 'cache', port: 6380, password: 's3cret' }), 'cache:6380');
    assert.equal(redisTarget({}, 'redis://:s3cret@cache.internal:6390/2'), 'cache.internal:6390');
    assert.equal(redisTarget({}, 'rediss://cache.internal'), 'cache.internal:6379');
    assert.equal(redisTarget({ port: 7000 }, 'redis://cache'), 'cache:7000');
    assert.equal(redisTarget({ path: '/run/redis.sock' }), '/run/redis.sock');
    assert.equal(redisTarget({ sentinels: [{ host: 's1', port: 26379 }], name: 'orders' }), 'sentinel master orders');
  });
});
