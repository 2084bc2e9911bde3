import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { MonitorConnection } from 'nestjs-connection-health';

/**
 * Takes jobs off a Redis list with BLPOP: a connection that waits in silence, the kind a dead NAT entry
 * strands for good. The client is the app's own; the package watches it (without disturbing the BLPOP)
 * and never closes it, so the worker does at shutdown. `LPUSH sample:jobs hello` hands it a job.
 */
@Injectable()
export class JobsWorker implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Jobs');

  @MonitorConnection({ name: 'jobs', kind: 'redis', required: false, reconnect: { maxAttempts: Infinity } })
  readonly queue = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true });

  onApplicationBootstrap(): void {
    // The connection's state is the monitor's to report; without a listener ioredis prints every retry.
    this.queue.on('error', () => undefined);
    void this.work();
  }

  onApplicationShutdown(): void {
    this.queue.disconnect(); // rejects the waiting BLPOP, which ends the loop
  }

  private async work(): Promise<void> {
    while (this.queue.status !== 'end') {
      const job = await this.queue.blpop(process.env.REDIS_QUEUE ?? 'sample:jobs', 0).catch(() => null);
      if (job) this.logger.log(`job from ${job[0]}: ${job[1]}`);
    }
  }
}
