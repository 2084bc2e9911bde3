import type { ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import type { RedisLike } from '../redis/redis-like.js';
import { redisAdapterLeavingSockets } from '../redis/redis.kind.js';

/**
 * A Nest ClientRedis' two connections, each proven by the redis kind: the pub client carries every emit() and
 * send(), the sub client the replies of send() (a dead sub alone makes every send() time out), so both are beaten
 * (PING is valid in SUBSCRIBE mode) and the loss of either is the proxy's. Neither socket is ever ended by the
 * package: ClientRedis ends the pair when one client ends, and its cleanup of a pending send() then rejects
 * unhandled (an UNSUBSCRIBE with no catch).
 */
export class RedisPairAdapter implements ConnectionAdapter {
  readonly kind = 'redis';
  readonly target?: string;
  private readonly clients: readonly ConnectionAdapter[];

  constructor(pub: RedisLike, sub: RedisLike) {
    this.clients = [redisAdapterLeavingSockets(pub), redisAdapterLeavingSockets(sub)];
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

/** Settles when both have (nothing of the other left running), with the first failure, pub's first. */
async function both(calls: readonly Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(calls)).find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
}
