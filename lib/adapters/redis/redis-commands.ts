import type { RedisLike } from './redis-like.js';

/**
 * Commands after which the server answers nothing else on that connection until they return: ioredis'
 * own list (Command.FLAGS.BLOCKING_COMMANDS), with WAIT and WAITAOF. XREAD and XREADGROUP block only with BLOCK.
 */
const BLOCKING = new Set(['blpop', 'brpop', 'brpoplpush', 'blmove', 'blmpop', 'bzpopmin', 'bzpopmax', 'bzmpop', 'wait', 'waitaof']);
const BLOCKING_WITH_OPTION = new Set(['xread', 'xreadgroup']);

interface SentCommand {
  readonly command?: { readonly name?: string; readonly args?: readonly unknown[]; readonly callback?: unknown };
}

/** ioredis' queues of commands (awaiting their reply, or waiting offline for a connection): denques. */
interface CommandQueue {
  readonly length: number;
  peekAt(index: number): SentCommand | undefined;
}

/**
 * Whether a command sent on the client's connection blocks it, so a PING would wait behind it. Read from
 * ioredis' queue of commands awaiting their reply, stopping at the first blocking one (a queue may hold a
 * million pipelined commands); a client without such a queue reads as not blocked.
 */
export function isBlocked(client: RedisLike): boolean {
  const queue = (client as { commandQueue?: Partial<CommandQueue> }).commandQueue;
  if (typeof queue?.peekAt !== 'function' || typeof queue.length !== 'number') return false;
  for (let i = 0; i < queue.length; i++) if (blocks(queue.peekAt(i))) return true;
  return false;
}

/**
 * Whether every command awaiting its reply on the client's connection is one of `ours` (the package's own
 * PINGs): the connection owes the app nothing, so a server that answers others has no reason to keep it
 * silent. A queue that cannot be read owes something, as far as anyone knows.
 */
export function awaitsOnly(client: RedisLike, ours: (name: string, args: readonly unknown[]) => boolean): boolean {
  return everyQueued(client, 'commandQueue', (command) => ours(command?.name?.toLowerCase() ?? '', command?.args ?? []));
}

/**
 * Whether the end of the client's connection would reject only commands whose rejection someone handles:
 * `ours`, or one given a callback (ioredis hands it the error). Ended, the client rejects both what awaits a
 * reply and what waits offline; a command without a callback (a Nest ClientRedis' UNSUBSCRIBE) would reject
 * unhandled, and an app on Node's defaults exits on that.
 */
export function endRejectsOnlyHandled(client: RedisLike, ours: (name: string, args: readonly unknown[]) => boolean): boolean {
  const handled = (command: SentCommand['command']) => typeof command?.callback === 'function' || ours(command?.name?.toLowerCase() ?? '', command?.args ?? []);
  return everyQueued(client, 'commandQueue', handled) && everyQueued(client, 'offlineQueue', handled);
}

/** Whether every command in one of ioredis' queues (denques) passes `test`; false for a queue that cannot be read. */
function everyQueued(client: RedisLike, queueName: 'commandQueue' | 'offlineQueue', test: (command: SentCommand['command']) => boolean): boolean {
  const queue = (client as { [name in typeof queueName]?: Partial<CommandQueue> })[queueName];
  if (typeof queue?.peekAt !== 'function' || typeof queue.length !== 'number') return false;
  for (let i = 0; i < queue.length; i++) if (!test(queue.peekAt(i)?.command)) return false;
  return true;
}

function blocks(sent: SentCommand | undefined): boolean {
  const name = sent?.command?.name?.toLowerCase() ?? '';
  if (BLOCKING.has(name)) return true;
  return BLOCKING_WITH_OPTION.has(name) && (sent?.command?.args ?? []).some((arg) => String(arg).toUpperCase() === 'BLOCK');
}

/** Whether `reply` answers `PING <token>`: the token itself, or ['pong', token] in SUBSCRIBE mode. */
export function isEcho(reply: unknown, token: string): boolean {
  const echoed: unknown = Array.isArray(reply) && reply.length === 2 && String(reply[0]).toLowerCase() === 'pong' ? reply[1] : reply;
  return (typeof echoed === 'string' || Buffer.isBuffer(echoed)) && echoed.toString() === token;
}

/** Where a client connects, without credentials: host:port, a unix socket's path, or the Sentinel master's name. */
export function redisTarget(options: object, url?: string): string {
  const { host, port, path, sentinels, name } = options as { host?: unknown; port?: unknown; path?: unknown; sentinels?: unknown; name?: unknown };
  if (Array.isArray(sentinels) && sentinels.length > 0) return `sentinel master ${String(name ?? 'mymaster')}`;
  if (typeof path === 'string') return path;
  const address = url === undefined ? undefined : new URL(url);
  const hostname = host ?? (address?.hostname || 'localhost');
  return `${String(hostname)}:${String(port ?? (address?.port || 6379))}`;
}
