/**
 * STOMP spoken by hand over a short-lived TCP connection, for the broker kits: a readiness check that
 * waits for a real CONNECTED frame, and a publisher that is independent of the client under test.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StompFrame {
  command: string;
  headers: Record<string, string>;
  body: string;
}

/** Speaks STOMP on one connection: write frames, read them one at a time. */
class StompWire {
  private buffer = '';
  private readonly frames: StompFrame[] = [];
  private waiter?: () => void;
  private failure?: Error;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.parse();
    });
    socket.on('error', (error) => (this.failure = error));
    socket.on('close', () => {
      this.failure ??= new Error('the broker closed the connection');
      this.waiter?.();
    });
  }

  static connect(host: string, port: number, signal: AbortSignal): Promise<StompWire> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const onAbort = () => {
        socket.destroy();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => {
        signal.removeEventListener('abort', onAbort);
        socket.removeAllListeners('error');
        resolve(new StompWire(socket));
      });
      socket.once('error', (error) => {
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        reject(error);
      });
    });
  }

  send(command: string, headers: Record<string, string>, body = ''): void {
    const lines = Object.entries(headers).map(([key, value]) => `${key}:${value}`);
    this.socket.write(`${command}\n${lines.join('\n')}${lines.length ? '\n' : ''}\n${body}\0`);
  }

  async next(signal: AbortSignal): Promise<StompFrame> {
    for (;;) {
      const frame = this.frames.shift();
      if (frame) return frame;
      if (this.failure) throw this.failure;
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal.removeEventListener('abort', wake);
          this.waiter = undefined;
          resolve();
        };
        this.waiter = wake;
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private parse(): void {
    for (;;) {
      this.buffer = this.buffer.replace(/^[\r\n]+/, ''); // heart-beats between frames
      const end = this.buffer.indexOf('\0');
      if (end < 0) break;
      const raw = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 1);
      const split = raw.indexOf('\n\n');
      const head = split < 0 ? raw : raw.slice(0, split);
      const [command = '', ...lines] = head.split('\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0 && !(line.slice(0, colon) in headers)) headers[line.slice(0, colon)] = line.slice(colon + 1);
      }
      this.frames.push({ command, headers, body: split < 0 ? '' : raw.slice(split + 2) });
    }
    this.waiter?.();
  }
}

export interface StompLogin {
  login?: string;
  passcode?: string;
}

/** Connects, returns the CONNECTED frame, disconnects. Throws on an ERROR frame or a network error. */
export async function stompHandshake(host: string, port: number, login: StompLogin = {}, timeoutMs = 2_000): Promise<StompFrame> {
  const signal = AbortSignal.timeout(timeoutMs);
  const wire = await StompWire.connect(host, port, signal);
  try {
    wire.send('CONNECT', { 'accept-version': '1.2', host: '/', 'heart-beat': '0,0', ...credentials(login) });
    const frame = await wire.next(signal);
    if (frame.command !== 'CONNECTED') throw new Error(`STOMP ${host}:${port} answered ${frame.command}: ${frame.headers.message ?? frame.body}`);
    wire.send('DISCONNECT', {});
    return frame;
  } finally {
    wire.destroy();
  }
}

/** Sends one message and returns once the broker has acknowledged it (RECEIPT); `headers` go on the SEND, e.g. persistent. */
export async function stompPublish(
  host: string,
  port: number,
  destination: string,
  body: string,
  login: StompLogin = {},
  timeoutMs = 5_000,
  headers: Record<string, string> = {},
): Promise<void> {
  const signal = AbortSignal.timeout(timeoutMs);
  const wire = await StompWire.connect(host, port, signal);
  try {
    wire.send('CONNECT', { 'accept-version': '1.2', host: '/', 'heart-beat': '0,0', ...credentials(login) });
    await expectFrame(wire, 'CONNECTED', signal);
    const sendHeaders = { ...headers, destination, receipt: 'sent', 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) };
    wire.send('SEND', sendHeaders, body);
    await expectFrame(wire, 'RECEIPT', signal);
    wire.send('DISCONNECT', {});
  } finally {
    wire.destroy();
  }
}

/** The messages a destination receives, on a connection of its own that auto-acknowledges them. */
export interface StompWatch {
  readonly messages: StompFrame[];
  /** Resolves with the first message (already received or still to come) that `predicate` accepts. */
  waitFor(predicate: (message: StompFrame) => boolean, timeoutMs: number): Promise<StompFrame>;
  close(): void;
}

/**
 * Subscribes to `destination` and collects what arrives, for tests that watch what a broker does with a
 * message (its dead-letter queue): resolves once the broker confirmed the subscription.
 */
export async function stompWatch(host: string, port: number, destination: string, login: StompLogin = {}, timeoutMs = 5_000): Promise<StompWatch> {
  const closed = new AbortController();
  const signal = AbortSignal.any([closed.signal, AbortSignal.timeout(timeoutMs)]);
  const wire = await StompWire.connect(host, port, signal);
  const messages: StompFrame[] = [];
  try {
    wire.send('CONNECT', { 'accept-version': '1.2', host: '/', 'heart-beat': '0,0', ...credentials(login) });
    await expectFrame(wire, 'CONNECTED', signal);
    wire.send('SUBSCRIBE', { id: 'watch', destination, ack: 'auto', receipt: 'subscribed' });
    await expectFrame(wire, 'RECEIPT', signal);
  } catch (error) {
    wire.destroy();
    throw error;
  }
  void (async () => {
    for (;;) {
      const frame = await wire.next(closed.signal);
      if (frame.command === 'MESSAGE') messages.push(frame);
    }
  })().catch(() => undefined); // ends when closed
  return {
    messages,
    async waitFor(predicate, withinMs) {
      const deadline = Date.now() + withinMs;
      for (;;) {
        const found = messages.find(predicate);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no matching message on ${destination} within ${withinMs} ms; got ${JSON.stringify(messages.map((m) => m.body))}`);
        await sleep(20);
      }
    },
    close() {
      closed.abort();
      wire.destroy();
    },
  };
}

/** Polls until a STOMP handshake succeeds; the last error explains a timeout. */
export async function waitForStomp(host: string, port: number, login: StompLogin, timeoutMs: number, isAlive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await stompHandshake(host, port, login, 1_000);
      return;
    } catch (error) {
      if (!isAlive()) throw new Error(`the broker for ${host}:${port} exited while starting`, { cause: error });
      if (Date.now() > deadline) throw new Error(`no STOMP CONNECTED from ${host}:${port} within ${timeoutMs} ms`, { cause: error });
      await sleep(100);
    }
  }
}


async function expectFrame(wire: StompWire, command: string, signal: AbortSignal): Promise<StompFrame> {
  const frame = await wire.next(signal);
  if (frame.command !== command) throw new Error(`expected ${command}, got ${frame.command}: ${frame.headers.message ?? frame.body}`);
  return frame;
}

function credentials({ login, passcode }: StompLogin): Record<string, string> {
  return { ...(login === undefined ? {} : { login }), ...(passcode === undefined ? {} : { passcode }) };
}
