import { Injectable } from '@nestjs/common';
import { UnknownConnectionError } from '../core/errors/unknown-connection.error.js';
import { messages } from '../core/messages.js';
import type { ConnectionHandle } from './connection-handle.js';

/** Monitored connections by name. */
@Injectable()
export class ConnectionHealthRegistry {
  private readonly handles = new Map<string, ConnectionHandle>();

  /** @internal */
  add(handle: ConnectionHandle): void {
    if (this.handles.has(handle.name)) throw new Error(messages.duplicateConnection(handle.name));
    this.handles.set(handle.name, handle);
  }

  /** The handle of a connection; throws UnknownConnectionError, listing the known names, for any other. */
  get(name: string): ConnectionHandle {
    const handle = this.handles.get(name);
    if (!handle) throw new UnknownConnectionError(name, this.names());
    return handle;
  }

  has(name: string): boolean {
    return this.handles.has(name);
  }

  names(): string[] {
    return [...this.handles.keys()];
  }

  all(): ConnectionHandle[] {
    return [...this.handles.values()];
  }
}
