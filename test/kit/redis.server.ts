import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanupAtExit } from './exit-cleanup.js';
import type { NetworkNamespace } from './network-namespace.js';
import { freePort, isAlive, killNow, waitUntilDead } from './process.util.js';

export interface RedisStartOptions {
  /** Default: a free high port. */
  port?: number;
  /** The listen address, also used by clients. Default: the namespace's address, else 127.0.0.1. */
  host?: string;
  /** Run the server inside this network namespace, so kernel-level faults can be injected around it. */
  netns?: Pick<NetworkNamespace, 'name' | 'nsAddress'>;
  /** `requirepass`: clients must AUTH with it (the default user). Default: none, anyone may connect. */
  password?: string;
}

/** Everything another process needs to reach, kick, kill and start again a running server. */
export interface RedisLocation {
  host: string;
  port: number;
  /** The temporary folder: redis.conf, redis.pid and the log. */
  dir: string;
  /** Name of the network namespace the server runs in, if any. */
  netns?: string;
  password?: string;
}

/** A RESP reply as the kit reads it: errors are thrown, not returned. */
export type RedisReply = string | number | null | RedisReply[];

/**
 * A throwaway redis-server run as a plain background process, for end-to-end tests: no persistence
 * (`save ''`, `appendonly no`), so kill() and startAgain() give an empty server on the same port in
 * milliseconds. Server-side faults: clientKill() (CLIENT KILL: the server closes the socket with a FIN,
 * no reply) and kill() (SIGKILL, like a crash or an OOM kill: also a FIN). The server daemonizes and is
 * found through its pid file, so any process holding the location (see attach) can kill and start it again.
 */
export class RedisServer {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly netns: string | undefined;
  readonly password: string | undefined;
  private stopped = false;
  private readonly forgetExitTask: (() => void) | undefined;

  private constructor(location: RedisLocation, private readonly owned: boolean) {
    ({ host: this.host, port: this.port, dir: this.dir, netns: this.netns, password: this.password } = location);
    this.forgetExitTask = owned ? cleanupAtExit(() => this.destroyNow()) : undefined;
  }

  /** Writes a configuration and starts the server (a few ms); returns once it answers PING. */
  static async start(options: RedisStartOptions = {}): Promise<RedisServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ch-redis-'));
    const server = new RedisServer(
      {
        host: options.host ?? options.netns?.nsAddress ?? '127.0.0.1',
        port: options.port ?? (await freePort()),
        dir,
        netns: options.netns?.name,
        password: options.password,
      },
      true,
    );
    try {
      await server.writeConfig();
      await server.startAgain();
      return server;
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  /**
   * A handle on a server another process started (the test runner, say). Everything but stop() works
   * on it; stop() does nothing, because the server belongs to the process that started it.
   */
  static attach(location: RedisLocation): RedisServer {
    if (!existsSync(path.join(location.dir, 'redis.conf'))) {
      throw new Error(`no redis.conf in ${location.dir}: was the server that owned it stopped already?`);
    }
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

  /** The server's pid; throws when it is not running. */
  get pid(): number {
    const pid = this.readPid();
    if (pid === undefined || !isAlive(pid)) throw new Error(`redis-server on port ${this.port} is not running`);
    return pid;
  }

  isRunning(): boolean {
    const pid = this.readPid();
    return pid !== undefined && isAlive(pid);
  }

  /** The server's log so far. */
  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Starts the server on the same port if it is not running; returns once it answers PING. */
  async startAgain(): Promise<void> {
    if (!this.isRunning()) {
      // A SIGKILLed server leaves its pid file; a recycled pid in it would read as running.
      rmSync(this.pidFile, { force: true });
      const argv = ['redis-server', this.configFile];
      const command = this.netns ? ['ip', 'netns', 'exec', this.netns, ...argv] : argv;
      // `daemonize yes`: the parent returns once the child forked, and the child keeps no pipe of ours open.
      const child = spawn(command[0]!, command.slice(1), { stdio: 'ignore' });
      const [code] = (await once(child, 'exit')) as [number | null];
      if (code !== 0) throw new Error(`redis-server on port ${this.port} did not start (exit ${code}); log tail:\n${this.logTail()}`);
    }
    await this.waitUntilReady();
  }

  /** SIGKILLs the server, like a crash or an OOM kill: the kernel closes every client socket with a FIN. */
  async kill(): Promise<void> {
    const pid = this.readPid();
    if (pid === undefined || !isAlive(pid)) return;
    killNow([pid]);
    await waitUntilDead([pid]);
  }

  /**
   * SIGSTOP: a hung server (a paused VM, a process stuck in the kernel). The kernel still completes new TCP
   * handshakes into the listen backlog and ACKs what clients send, so they see no error, only silence.
   * resume() lets it answer everything queued meanwhile.
   */
  pause(): void {
    process.kill(this.pid, 'SIGSTOP');
  }

  /** SIGCONT after pause(); a no-op on a server that runs. */
  resume(): void {
    process.kill(this.pid, 'SIGCONT');
  }

  /** kill(), then startAgain() on the same port: clients see a FIN and an empty server behind it. */
  async restart(): Promise<void> {
    await this.kill();
    await this.startAgain();
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

  /** Shuts down and removes the temporary folder. Idempotent; a no-op on an attached server. */
  async stop(): Promise<void> {
    if (!this.owned || this.stopped) return;
    this.stopped = true;
    this.forgetExitTask?.();
    await this.kill();
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  private get configFile(): string {
    return path.join(this.dir, 'redis.conf');
  }

  private get pidFile(): string {
    return path.join(this.dir, 'redis.pid');
  }

  private get logFile(): string {
    return path.join(this.dir, 'log');
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

  private readPid(): number | undefined {
    try {
      const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private async waitUntilReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if ((await this.command('PING')) === 'PONG') return;
      } catch (error) {
        // LOADING (never here, nothing is persisted) and refused connections mean "not there yet".
        if (error instanceof RedisError && !error.message.startsWith('LOADING')) throw error;
        if (Date.now() > deadline) throw new Error(`redis-server at ${this.host}:${this.port} never answered; log tail:\n${this.logTail()}`, { cause: error });
      }
      await sleep(20);
    }
  }

  private logTail(): string {
    return this.log().trimEnd().split('\n').slice(-10).join('\n') || '(no log)';
  }

  /** Synchronous, for process exit: just make sure nothing outlives the process. */
  private destroyNow(): void {
    const pid = this.readPid();
    if (pid !== undefined) killNow([pid]);
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
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
