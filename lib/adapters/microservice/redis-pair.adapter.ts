import type { ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import type { RedisLike } from '../redis/redis-like.js';
import { dropSocket, type RedisAdapter } from '../redis/redis.adapter.js';
import { redisAdapterOnSharedSocket } from '../redis/redis.kind.js';

/**
 * A Nest ClientRedis' two connections, each proven by the redis kind: the pub client carries every emit() and
 * send(), the sub client the replies of send() (a dead sub alone makes every send() time out), so both are beaten
 * (PING is valid in SUBSCRIBE mode) and the loss of either is the proxy's.
 *
 * ClientRedis ends the pair when one client ends: it fails every send() awaiting a reply, whose cleanup
 * UNSUBSCRIBEs with no catch, and the ended clients reject what they still hold. So a socket whose flow is dead
 * is ended only while no send() awaits its reply and every command either client holds is handled (the
 * package's PINGs, emit()'s PUBLISH with its callback): an unhandled rejection exits an app on Node's defaults.
 * Without retryAttempts, Nest drops the pair at the end of either client, and Nest 11 leaves the other one
 * open (nothing would ever close it): both sockets are ended then. With them, ioredis dials the one again.
 */
export class RedisPairAdapter implements ConnectionAdapter {
  readonly kind = 'redis';
  readonly target?: string;
  private readonly clients: readonly RedisAdapter[];

  constructor(pub: RedisLike, sub: RedisLike, proxy: object) {
    const endSocket = (client: RedisLike): boolean => {
      if (!awaitsNoReply(proxy) || !this.clients.every((adapter) => adapter.endRejectsOnlyHandled())) return false;
      for (const ending of dropsPairAtEnd(proxy) ? [pub, sub] : [client]) dropSocket(ending);
      return true;
    };
    this.clients = [redisAdapterOnSharedSocket(pub, endSocket), redisAdapterOnSharedSocket(sub, endSocket)];
    this.target = this.clients[0]!.target;
  }

  open(signal: AbortSignal): Promise<void> {
    return both(this.clients.map((client) => client.open(signal)));
  }

  ping(signal: AbortSignal): Promise<void> {
    return both(this.clients.map((client) => client.ping(signal)));
  }

  /** The kind's close of each: its listeners off, the clients left as they are. */
  close(signal: AbortSignal): Promise<void> {
    return both(this.clients.map((client) => client.close(signal)));
  }

  observeLoss(onLoss: (error: Error) => void): () => void {
    const stops = this.clients.map((client) => client.observeLoss?.(onLoss));
    return () => stops.forEach((stop) => stop?.());
  }
}

/** Whether the proxy's map of send()s awaiting their reply (ClientProxy's routingMap, Nest 11 and 12) is empty; unreadable, it is not. */
function awaitsNoReply(proxy: object): boolean {
  const routingMap = (proxy as { routingMap?: unknown }).routingMap;
  return routingMap instanceof Map && routingMap.size === 0;
}

/** Whether Nest drops the pair when a client ends: no retryAttempts in the proxy's options (ioredis then never redials). */
function dropsPairAtEnd(proxy: object): boolean {
  const options = (proxy as { options?: { retryAttempts?: unknown } }).options;
  return !options?.retryAttempts;
}

/** Settles when both have (nothing of the other left running), with the first failure, pub's first. */
async function both(calls: readonly Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(calls)).find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
}
