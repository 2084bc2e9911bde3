import type { ChaosProxy } from '../../test/kit/chaos.proxy.js';
import type { FaultServer, ServerKick } from './detection-kind.interface.js';

export interface FaultContext {
  server: FaultServer;
  /** The chaos proxy between client and server, for faults that need one. */
  proxy?: ChaosProxy;
}

export interface Fault {
  name: string;
  description: string;
  /** Clients reach the server through a chaos proxy that injects the fault. */
  viaProxy: boolean;
  /** Resolves to the moment the fault reached the clients when that is not the moment it was injected. */
  inject(context: FaultContext): Promise<number | void> | void;
  /**
   * Ends the fault; resolves when the server is reachable again. Absent for a one-off event (an RST),
   * which is over once injected: recovery then counts from the fault itself.
   */
  clear?(context: FaultContext): Promise<void> | void;
  /** How long the fault lasts after the monitor noticed it, so reconnect attempts run into it too. */
  holdMs: number;
}

const proxyOf = ({ proxy }: FaultContext): ChaosProxy => {
  if (!proxy) throw new Error('this fault needs a chaos proxy');
  return proxy;
};

/** The faults of the issue; `slowMs` is the one-way latency of 'slow' (above the heartbeat deadline). */
export function faults(slowMs: number): Fault[] {
  return [
    {
      name: 'kill',
      description: 'kill -9 of the server (clients get a FIN); cleared once it answers again',
      viaProxy: false,
      inject: ({ server }) => server.kill(),
      clear: ({ server }) => server.startAgain(),
      holdMs: 500,
    },
    {
      name: 'RST',
      description: 'every connection reset (chaos proxy), new connections accepted at once',
      viaProxy: true,
      inject: (context) => proxyOf(context).reset(),
      holdMs: 0,
    },
    {
      name: 'blackhole',
      description: 'every byte swallowed both ways, no FIN or RST (chaos proxy); cleared by passing traffic again',
      viaProxy: true,
      inject: (context) => proxyOf(context).blackhole(),
      clear: (context) => proxyOf(context).pass(),
      holdMs: 500,
    },
    {
      name: 'slow',
      description: `${slowMs} ms latency each way (chaos proxy), above the heartbeat deadline`,
      viaProxy: true,
      inject: (context) => proxyOf(context).latency(slowMs),
      clear: (context) => proxyOf(context).pass(),
      holdMs: 500,
    },
  ];
}

/**
 * A kind's server-side kick: the server closes every client connection itself (a FIN) and stays up, so
 * clients may reconnect at once; a one-off event like an RST, recovery counts from the kick.
 */
export function kickFault(kick: ServerKick<FaultServer>): Fault {
  return {
    name: `kick (${kick.how})`,
    description: `the server closes every client connection itself (${kick.how}) and stays up`,
    viaProxy: false,
    inject: async ({ server }) => {
      const outcome = await kick.run(server);
      return typeof outcome === 'object' && outcome !== null && 'reachedAt' in outcome ? (outcome.reachedAt as number) : undefined;
    },
    holdMs: 0,
  };
}
