import { messages } from '../messages.js';

/** A heartbeat, connect or close did not settle before its deadline. */
export class HeartbeatTimeoutError extends Error {
  override readonly name = 'HeartbeatTimeoutError';

  constructor(
    readonly connection: string,
    readonly operation: 'heartbeat' | 'connect' | 'close',
    readonly timeoutMs: number,
  ) {
    super(
      operation === 'heartbeat'
        ? messages.heartbeatTimeout(connection, timeoutMs)
        : messages.operationTimeout(connection, operation, timeoutMs),
    );
  }
}
