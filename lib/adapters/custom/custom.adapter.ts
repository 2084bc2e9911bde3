import type { ConnectionAdapter } from '../../core/connection-adapter.interface.js';

/** A connection the package knows nothing of, but for the functions its owner gives. */
export interface CustomConnection {
  /** One heartbeat: resolve when the far end answered. Honour the signal to free what a hung call holds. */
  ping(signal: AbortSignal): Promise<unknown>;
  /** Connects, or reconnects after a loss. Default: one ping, which must answer. */
  open?(signal: AbortSignal): Promise<unknown>;
  /** Closes politely; force-close when the signal aborts. Default: nothing to close. */
  close?(signal: AbortSignal): Promise<unknown>;
  /** Where it points, without credentials: shown in health details. */
  target?: string;
}

export class CustomAdapter implements ConnectionAdapter {
  readonly kind = 'custom';
  readonly target?: string;

  constructor(private readonly connection: CustomConnection) {
    this.target = connection.target;
  }

  async open(signal: AbortSignal): Promise<void> {
    await (this.connection.open ? this.connection.open(signal) : this.connection.ping(signal));
  }

  async ping(signal: AbortSignal): Promise<void> {
    await this.connection.ping(signal);
  }

  async close(signal: AbortSignal): Promise<void> {
    await this.connection.close?.(signal);
  }
}
