import net from 'node:net';
import { resetSocket } from './reset-socket.js';

type Mode = 'pass' | 'latency' | 'stall' | 'blackhole' | 'refuse';

/** One direction of a connection; chunks wait here out their latency, so order is kept when it changes. */
interface Lane {
  to: net.Socket;
  /** Forgotten (see forget()): its bytes vanish whatever the mode. */
  forgotten: boolean;
  /** The most this lane carries, once throttled (see throttle()). */
  bytesPerSecond: number | undefined;
  /** A null chunk stands for the FIN, which must not overtake the data before it. */
  queue: Array<{ dueAt: number; chunk: Buffer | null }>;
  timer: NodeJS.Timeout | undefined;
}

interface Link {
  client: net.Socket;
  upstream: net.Socket;
  lanes: [Lane, Lane];
}

export interface ChaosProxyOptions {
  /** Where the proxy listens, also the address clients use. Default 127.0.0.1. */
  host?: string;
  /** Keep every byte clients send, for clientBytes(): to prove what did or did not cross the wire. Default false. */
  record?: boolean;
}

/**
 * A TCP proxy (on 127.0.0.1 unless told otherwise) that injects faults between a client and a real
 * server, for machines where kernel-level tools (netem, namespaces) are not available. A mode applies at
 * once to every current connection and to new ones.
 *
 * No backpressure: test traffic is small, and pausing for 'drain' would fight stall().
 */
export class ChaosProxy {
  private mode: Mode = 'pass';
  private delayMs = 0;
  private readonly links = new Set<Link>();
  private readonly recorded: Buffer[] | undefined;

  private constructor(
    private readonly server: net.Server,
    readonly host: string,
    readonly port: number,
    private readonly targetHost: string,
    private readonly targetPort: number,
    record: boolean,
  ) {
    this.recorded = record ? [] : undefined;
    server.on('connection', (client) => this.accept(client));
  }

  static async start(targetHost: string, targetPort: number, options: ChaosProxyOptions = {}): Promise<ChaosProxy> {
    const host = options.host ?? '127.0.0.1';
    // Half-open allowed, so a FIN from one side is forwarded (or swallowed) like any other byte.
    const server = net.createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, resolve);
    });
    return new ChaosProxy(server, host, (server.address() as net.AddressInfo).port, targetHost, targetPort, options.record ?? false);
  }

  /** Every byte clients sent through the proxy so far, all connections in order of arrival, as latin1 text. */
  clientBytes(): string {
    if (!this.recorded) throw new Error('start the proxy with { record: true } to read what clients sent');
    return Buffer.concat(this.recorded).toString('latin1');
  }

  get connectionCount(): number {
    return this.links.size;
  }

  /**
   * Forward everything at once. Bytes an earlier latency() or throttle() still holds go first, now: a path whose
   * delay ends delivers what it had in flight at once, to old and new connections alike (held back by their old
   * delay, old flows would answer later than a new connection along the same path, which no real path does).
   */
  pass(): void {
    this.setMode('pass');
    const now = Date.now();
    for (const { lanes } of this.links) {
      for (const lane of lanes) {
        for (const queued of lane.queue) queued.dueAt = Math.min(queued.dueAt, now);
        this.flush(lane);
      }
    }
  }

  /** Delay every chunk in both directions by `ms`, keeping order. */
  latency(ms: number): void {
    this.setMode('latency', ms);
  }

  /** Stop reading both ways: bytes queue up in the kernel, senders eventually block; pass() releases them. */
  stall(): void {
    this.setMode('stall');
  }

  /**
   * Read and discard everything, FINs included, while both sockets stay open: an application-level
   * partition (TCP ACKs still flow, so keepalive does not notice). Swallowed bytes are lost for good, so
   * connections that lived through it are garbage afterwards; new connections work again after pass().
   */
  blackhole(): void {
    this.setMode('blackhole');
  }

  /**
   * A NAT or a load balancer that forgot the current connections: their bytes vanish both ways, for good,
   * and neither side hears of it, while new connections pass as before. With `clientPort`, only the connection
   * whose client socket is on that port (the client's `localPort`): one flow's NAT entry expired, not the others'.
   */
  forget(clientPort?: number): void {
    for (const { client, lanes } of this.links) {
      if (clientPort !== undefined && client.remotePort !== clientPort) continue;
      for (const lane of lanes) {
        lane.forgotten = true;
        this.clear(lane);
      }
    }
  }

  /**
   * The current connections carry at most `bytesPerSecond` each way, in order, while new connections pass at
   * once: a congested flow, or a consumer slower than its messages, where what comes last (a PONG) waits
   * behind a growing backlog that still trickles in. pass() lifts it.
   */
  throttle(bytesPerSecond: number): void {
    for (const { lanes } of this.links) for (const lane of lanes) lane.bytesPerSecond = bytesPerSecond;
  }

  /** Reset every new connection right after accepting it; current connections carry on as in pass(). */
  refuse(): void {
    this.setMode('refuse');
  }

  /** Graceful close (FIN) of every current connection, towards client and server. */
  fin(): void {
    for (const { client, upstream } of this.links) {
      client.end();
      upstream.end();
    }
  }

  /** Abort (RST) every current connection, towards client and server; a side whose FIN is on its way is closed. */
  reset(): void {
    for (const { client, upstream } of this.links) {
      resetSocket(client);
      resetSocket(upstream);
    }
  }

  /** Destroys every connection and the listener; leaves no handle or timer behind. */
  async close(): Promise<void> {
    for (const link of this.links) this.drop(link);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private setMode(mode: Mode, delayMs = 0): void {
    this.mode = mode;
    this.delayMs = delayMs;
    for (const { client, upstream, lanes } of this.links) {
      if (mode === 'pass') for (const lane of lanes) lane.bytesPerSecond = undefined;
      for (const socket of [client, upstream]) mode === 'stall' ? socket.pause() : socket.resume();
      if (mode === 'blackhole') for (const lane of lanes) this.clear(lane);
    }
  }

  private accept(client: net.Socket): void {
    if (this.mode === 'refuse') {
      client.on('error', () => undefined).resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: this.targetHost, port: this.targetPort, allowHalfOpen: true });
    if (this.recorded) client.on('data', (chunk: Buffer) => this.recorded!.push(chunk));
    const link: Link = { client, upstream, lanes: [this.wire(client, upstream), this.wire(upstream, client)] };
    this.links.add(link);
    for (const [socket, peer] of [[client, upstream], [upstream, client]] as const) {
      socket.setNoDelay(true);
      // An error on one side (ECONNREFUSED, ECONNRESET) is passed on as an RST, as a router would; the other
      // side may have ended already, on a FIN this side sent before it failed.
      socket.on('error', () => resetSocket(peer));
      // Gone once both sides are: a side that closes first may still have delayed bytes owed to the other.
      socket.on('close', () => peer.destroyed && this.drop(link));
      if (this.mode === 'stall') socket.pause();
    }
  }

  private wire(from: net.Socket, to: net.Socket): Lane {
    const lane: Lane = { to, forgotten: false, bytesPerSecond: undefined, queue: [], timer: undefined };
    from.on('data', (chunk: Buffer) => this.carry(lane, chunk));
    from.on('end', () => this.carry(lane, null));
    return lane;
  }

  private carry(lane: Lane, chunk: Buffer | null): void {
    if (this.mode === 'blackhole' || lane.forgotten) return;
    const previousDueAt = lane.queue.at(-1)?.dueAt ?? 0;
    const sentAt = Math.max(Date.now() + this.delayMs, previousDueAt);
    const transferMs = lane.bytesPerSecond && chunk ? (chunk.length * 1_000) / lane.bytesPerSecond : 0;
    lane.queue.push({ dueAt: sentAt + transferMs, chunk });
    this.flush(lane);
  }

  private flush(lane: Lane): void {
    clearTimeout(lane.timer);
    lane.timer = undefined;
    while (lane.queue.length > 0) {
      const head = lane.queue[0]!;
      const waitMs = head.dueAt - Date.now();
      if (waitMs > 0) {
        lane.timer = setTimeout(() => this.flush(lane), waitMs);
        return;
      }
      lane.queue.shift();
      if (lane.to.destroyed || lane.to.writableEnded) continue;
      if (head.chunk) lane.to.write(head.chunk);
      else lane.to.end();
    }
  }

  private clear(lane: Lane): void {
    clearTimeout(lane.timer);
    lane.timer = undefined;
    lane.queue.length = 0;
  }

  private drop(link: Link): void {
    if (!this.links.delete(link)) return;
    for (const lane of link.lanes) this.clear(lane);
    link.client.destroy();
    link.upstream.destroy();
  }
}
