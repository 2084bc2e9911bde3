import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TcpAdapter } from '../lib/adapters/tcp/tcp.adapter.js';
import { applyTcpKeepAlive, KEEPALIVE_WARNING } from '../lib/adapters/tcp-keepalive.js';
import { TestApp } from './kit/test-app.js';

/** A real TCP listener that counts the connections open on its side, and may end each one as it comes. */
class Listener {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  endOnAccept = false;
  port = 0;

  constructor() {
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
      if (this.endOnAccept) socket.end();
    });
  }

  get open(): number {
    return this.sockets.size;
  }

  async listen(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Resolves once exactly `count` connections are open, or rejects after `withinMs`. */
  async until(count: number, withinMs = 2_000): Promise<void> {
    const deadline = Date.now() + withinMs;
    while (this.open !== count) {
      assert.ok(Date.now() < deadline, `${this.open} connections open at the listener, expected ${count}`);
      await sleep(10);
    }
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe("TCP 'hold' mode and its keepalive step, against a real listener", () => {
  const listener = new Listener();
  before(() => listener.listen());
  after(() => listener.close());

  it('a keepalive option the kernel refuses costs neither the connection nor a socket, and is told once', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error & { code?: string }) => void (warning.code === KEEPALIVE_WARNING && warnings.push(warning));
    process.on('warning', onWarning);
    // Linux caps TCP_KEEPCNT at 127: net-keepalive's setsockopt fails with EINVAL, a real kernel refusal.
    const connection = {
      name: 'relay',
      kind: 'tcp' as const,
      mode: 'hold' as const,
      host: '127.0.0.1',
      port: listener.port,
      keepAlive: { count: 200 },
      heartbeat: { intervalMs: 60_000, timeoutMs: 1_000 },
      reconnect: { initialDelayMs: 100, maxDelayMs: 200 },
    };
    const app = await TestApp.start({ health: { connections: [connection] } });
    try {
      await app.waitForState('relay', 'up', 3_000);
      await listener.until(1); // the held connection, and no other left behind
      assert.equal(app.registry.get('relay').client<Socket>()?.destroyed, false);
      const before = app.snapshot('relay').since;
      app.registry.get('relay').forceReconnect(); // a second open: the refusal is not told again
      await app.waitFor('relay', (s) => s.state === 'up' && s.since > before, 3_000);
      await listener.until(1);
      assert.deepEqual(
        warnings.map((warning) => warning.message),
        [
          'The platform refused the TCP keepalive option "keepAlive.count" (200): setsockopt EINVAL. Connections go on with ' +
            "the kernel's own value for it; use a value the platform accepts (Linux: count at most 127, intervals at most " +
            '32 767 000 ms), or leave the option out.',
        ],
      );
    } finally {
      process.off('warning', onWarning);
      await app.close();
    }
    await listener.until(0);
  });

  it('a keepalive step that throws fails the open and closes its socket', async () => {
    const adapter = new TcpAdapter({ host: '127.0.0.1', port: listener.port, mode: 'hold' }, async () => {
      throw new Error('setsockopt ENOPROTOOPT');
    });
    await assert.rejects(adapter.open(AbortSignal.timeout(2_000)), /ENOPROTOOPT/);
    assert.equal(adapter.currentClient(), undefined);
    await listener.until(0);
  });

  it('a close while the keepalive step runs fails the open, instead of holding a closed socket', async () => {
    listener.endOnAccept = true;
    try {
      const losses: Error[] = [];
      // The real keepalive step, run once the listener has ended the connection: the window the step's await opens.
      const adapter = new TcpAdapter({ host: '127.0.0.1', port: listener.port, mode: 'hold' }, async (socket, options) => {
        await once(socket, 'close');
        return applyTcpKeepAlive(socket, options);
      });
      adapter.observeLoss((error) => losses.push(error));
      await assert.rejects(adapter.open(AbortSignal.timeout(2_000)), /^Error: 127\.0\.0\.1:\d+ closed the connection$/);
      assert.equal(adapter.currentClient(), undefined);
      assert.deepEqual(losses, [], 'a connection that never opened is a failed open, not a loss');
      await listener.until(0);
    } finally {
      listener.endOnAccept = false;
    }
  });
});
