import { Injectable, type Type } from '@nestjs/common';
import { CONNECTION_HEARTBEAT, CONNECTION_LIFECYCLE, MONITORED_CONNECTIONS } from '../connection-health.constants.js';
import type { HeartbeatMetadata } from '../decorators/connection-heartbeat.decorator.js';
import type { LifecycleMetadata } from '../decorators/connection-lifecycle.decorator.js';
import type { MonitoredMember } from '../decorators/monitor-connection.decorator.js';

/** Reads what the decorators wrote. */
@Injectable()
export class ConnectionHealthMetadataAccessor {
  monitoredMembers(type: Type<unknown> | Function): MonitoredMember[] {
    return Reflect.getMetadata(MONITORED_CONNECTIONS, type) ?? [];
  }

  heartbeat(method: Function): HeartbeatMetadata | undefined {
    return Reflect.getMetadata(CONNECTION_HEARTBEAT, method);
  }

  lifecycles(method: Function): LifecycleMetadata[] {
    return Reflect.getMetadata(CONNECTION_LIFECYCLE, method) ?? [];
  }
}
