import { SetMetadata } from '@nestjs/common';
import { CONNECTION_HEARTBEAT } from '../connection-health.constants.js';
import type { CustomConnectionDefinition } from '../interfaces/connection-definition.interface.js';

/** Options of a decorated heartbeat: those of a custom connection, but for its name and functions. */
export type ConnectionHeartbeatOptions = Omit<CustomConnectionDefinition, 'name' | 'kind' | 'ping' | 'open' | 'close'>;

/** @internal */
export interface HeartbeatMetadata {
  readonly name: string;
  readonly options: ConnectionHeartbeatOptions;
}

/**
 * Makes a method the heartbeat of a custom connection named `name`: it receives an AbortSignal that fires
 * at the deadline and resolves when the far end answered (a Redis PING, a gRPC health call, an HTTP
 * upstream). The connection then has the engine's states, backoff and health reporting.
 */
export function ConnectionHeartbeat(name: string, options: ConnectionHeartbeatOptions = {}): MethodDecorator {
  return SetMetadata<string, HeartbeatMetadata>(CONNECTION_HEARTBEAT, { name, options });
}
