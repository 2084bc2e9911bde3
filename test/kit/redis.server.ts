import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { DaemonServer, type DaemonLocation, type DaemonStartOptions } from './daemon.server.js';

export interface RedisStartOptions extends DaemonStartOptions {
  /** `requirepass`: clients must AUTH with it (the default user). Default: none, anyone may connect. */
  password?: string;
}

/** Everything another process needs to reach, kick, kill and start again a running server. */
export interface RedisLocation extends DaemonLocation {
  password?: string;
}

/** A RESP reply as the kit reads it: errors are thrown, not returned. */
export type RedisReply = string | number | null | RedisReply[];

/**
 * A throwaway redis-server run as a plain background process, for end-to-end tests: no persistence
 * (`save ''`, `appendonly no`), so kill() and startAgain() give an empty server on the same port in
 * milliseconds. Server-side faults: clientKill() (CLIENT KILL: the server closes the socket with a FIN,
 * no reply), kill() (SIGKILL, like a crash or an OOM kill: also a FIN) and pause() (SIGSTOP: silence). The
 * server daemonizes and is found through its pid file, so any process holding the location (see attach) can
 * kill and start it again.
 */
export class RedisServer extends DaemonServer<RedisLocation> {
  readonly password: string | undefined;

  private constructor(location: RedisLocation, owned: boolean) {
    super(location, owned, { name: 'redis-server', stem: 'redis' });
    this.password = location.password;
  }

  /** Writes a configuration and starts the server (a few ms); returns once it answers PING. */
  static async start(options: RedisStartOptions = {}): Promise<RedisServer> {
    const server = new RedisServer({ ...(await DaemonServer.place('redis', options)), password: options.password }, true);
    return server.launch(() => server.writeConfig());
  }

  /**
   * A handle on a server another process started (the test runner, say). Everything but stop() works
   * on it; stop() does nothing, because the server belongs to the process that started it.
   */
  static attach(location: RedisLocation): RedisServer {
    return new RedisServer(location, false);
  }

  get location(): RedisLocation {
    return { host: this.host, port: this.port, dir: this.dir, netns: this.netns, password: this.password };
  }

  /** `redis://[:password@]host:port`, as ioredis and node-redis take it. */
  get url(): string {
    const auth = this.password === undefined ? '' : `:${encodeURIComponent(this.password)}@`;
    return `redis://${auth}${this.host}:${this.port}`;
  }

  /**
   * CLIENT KILL, the server-side kick: the server closes the matching sockets (a FIN, no reply). `filter` as
   * CLIENT KILL takes it (e.g. `{ id: 7 }`, `{ laddr: '127.0.0.1:6379' }`, `{ type: 'pubsub' }`); default:
   * every client, normal and subscribed (TYPE normal alone leaves subscribers alone). The kit's own
   * connection is never among them (SKIPME yes). Returns how many it closed.
   */
  async clientKill(filter?: Record<string, string | number>): Promise<number> {
    const filters = filter ? [filter] : [{ type: 'normal' }, { type: 'pubsub' }];
    let killed = 0;
    for (const one of filters) {
      const args = Object.entries(one).flatMap(([key, value]) => [key.toUpperCase(), String(value)]);
      killed += (await this.command('CLIENT', 'KILL', ...args, 'SKIPME', 'yes')) as number;
    }
    return killed;
  }

  /** The clients the server holds now (CLIENT LIST), each as its key=value fields, the kit's own excluded. */
  async clients(): Promise<Record<string, string>[]> {
    const list = (await this.command('CLIENT', 'LIST')) as string;
    return list
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => Object.fromEntries(line.trim().split(' ').map((field) => field.split('=', 2) as [string, string])))
      // The kit's own connection is the one running this very command.
      .filter((client) => client.cmd !== 'client|list');
  }

  /**
   * Runs one command on a short-lived raw connection (AUTH first when the server has a password) and
   * returns its reply; an error reply rejects. No client library, so the kit does not depend on the one under test.
   */
  async command(...args: (string | number)[]): Promise<RedisReply> {
    const socket = net.connect({ host: this.host, port: this.port });
    try {
      await once(socket, 'connect');
      const replies = new RespReader(socket);
      if (this.password !== undefined) {
        socket.write(encodeCommand(['AUTH', this.password]));
        await replies.next();
      }
      socket.write(encodeCommand(args.map(String)));
      return await replies.next();
    } finally {
      socket.destroy();
    }
  }

  /** `daemonize yes` in the configuration makes redis-server fork into the background. */
  protected daemonCommand(): string[] {
    return ['redis-server', this.configFile];
  }

  protected async ready(): Promise<boolean> {
    try {
      return (await this.command('PING')) === 'PONG';
    } catch (error) {
      // LOADING (never here, nothing is persisted) and refused connections mean "not there yet".
      if (error instanceof RedisError && !error.message.startsWith('LOADING')) throw error;
      return false;
    }
  }

  private async writeConfig(): Promise<void> {
    const lines = [
      `bind ${this.host}`,
      `port ${this.port}`,
      // Not "yes": a client in a test's network namespace comes over the veth, not loopback.
      'protected-mode no',
      'daemonize yes',
      `pidfile ${this.pidFile}`,
      `logfile ${this.logFile}`,
      `dir ${this.dir}`,
      // Nothing persisted, so a killed server comes back empty and at once.
      `save ""`,
      'appendonly no',
      // The server never drops an idle client by itself (the default), so only the faults a test injects end one.
      'timeout 0',
      ...(this.password === undefined ? [] : [`requirepass "${this.password.replace(/["\\]/g, '\\$&')}"`]),
    ];
    await writeFile(this.configFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  }
}

/** An error reply (`-ERR ...`, `-NOAUTH ...`). */
class RedisError extends Error {}

function encodeCommand(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`;
}

/** Reads RESP2 replies off a socket, one at a time. */
class RespReader {
  private buffer = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(socket: net.Socket) {
    const notify = (): void => {
      this.wake?.();
      this.wake = undefined;
    };
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      notify();
    });
    socket.on('close', () => {
      this.ended = true;
      notify();
    });
    socket.on('error', () => undefined); // 'close' follows and ends the wait.
  }

  async next(): Promise<RedisReply> {
    for (;;) {
      const parsed = parse(this.buffer, 0);
      if (parsed) {
        this.buffer = this.buffer.subarray(parsed.end);
        if (parsed.value instanceof RedisError) throw parsed.value;
        return parsed.value;
      }
      if (this.ended) throw new Error('redis-server closed the connection before replying');
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

/** One reply starting at `start`, or undefined when the buffer does not hold all of it yet. */
function parse(buffer: Buffer, start: number): { value: RedisReply | RedisError; end: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', start);
  if (lineEnd < 0) return undefined;
  const head = buffer.toString('utf8', start + 1, lineEnd);
  const next = lineEnd + 2;
  switch (String.fromCharCode(buffer[start]!)) {
    case '+':
      return { value: head, end: next };
    case '-':
      return { value: new RedisError(head), end: next };
    case ':':
      return { value: Number(head), end: next };
    case '$': {
      const length = Number(head);
      if (length < 0) return { value: null, end: next };
      if (buffer.length < next + length + 2) return undefined;
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(head);
      if (count < 0) return { value: null, end: next };
      const items: RedisReply[] = [];
      let end = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buffer, end);
        if (!item) return undefined;
        if (item.value instanceof RedisError) return item;
        items.push(item.value);
        end = item.end;
      }
      return { value: items, end };
    }
    default:
      throw new Error(`not a RESP reply: ${JSON.stringify(buffer.toString('utf8', start, lineEnd))}`);
  }
}
