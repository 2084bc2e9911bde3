import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanupAtExit } from './exit-cleanup.js';
import type { NetworkNamespace } from './network-namespace.js';
import { freePort, isAlive, killNow, waitUntilDead } from './process.util.js';

/** Where and how a daemon server listens; each server's start options add what is its own. */
export interface DaemonStartOptions {
  /** Default: a free high port. */
  port?: number;
  /** The listen address, also used by clients. Default: the namespace's address, else 127.0.0.1. */
  host?: string;
  /** Run the server inside this network namespace, so kernel-level faults can be injected around it. */
  netns?: Pick<NetworkNamespace, 'name' | 'nsAddress'>;
}

/** Everything another process needs to reach, kill and start again a running server. */
export interface DaemonLocation {
  host: string;
  port: number;
  /** The temporary folder: STEM.conf, STEM.pid, the log and whatever else the server keeps. */
  dir: string;
  /** Name of the network namespace the server runs in, if any. */
  netns?: string;
}

/** What the base needs to know of one program. */
export interface DaemonProgram {
  /** As messages name it: `redis-server`. */
  name: string;
  /** The stem of the files in the folder: `redis` gives redis.conf and redis.pid. */
  stem: string;
  /**
   * The program cannot daemonize (nats-server has no such option): its command runs it in the foreground,
   * and the base detaches it instead. Default: false, the command forks the server off and exits.
   */
  foreground?: boolean;
}

/**
 * A throwaway server run in the background: a single process, started by a command that forks it into the
 * background and exits (or detached by the base, see DaemonProgram.foreground), and that writes its pid to a
 * file in the server's temporary folder. The pid file, not a child handle, is the truth, so any process
 * holding the location (see the servers' attach) can kill, pause and start the server again, and `pid` stays
 * true across restarts. Subclasses bring the configuration, the command, the readiness check and their own
 * faults.
 */
export abstract class DaemonServer<Location extends DaemonLocation> {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly netns: string | undefined;
  private stopped = false;
  private readonly forgetExitTask: (() => void) | undefined;

  /**
   * `owned`: this process started the server, so stop() and exit clean it up. An attached handle (not owned)
   * needs the configuration in place: without it the owner stopped the server and removed its folder.
   */
  protected constructor(
    location: Location,
    private readonly owned: boolean,
    private readonly program: DaemonProgram,
  ) {
    ({ host: this.host, port: this.port, dir: this.dir, netns: this.netns } = location);
    if (!owned && !existsSync(this.configFile)) {
      throw new Error(`no ${path.basename(this.configFile)} in ${this.dir}: was the server that owned it stopped already?`);
    }
    this.forgetExitTask = owned ? cleanupAtExit(() => this.destroyNow()) : undefined;
  }

  /** A new temporary folder and the address to listen on, from the start options' defaults. */
  protected static async place(stem: string, options: DaemonStartOptions): Promise<DaemonLocation> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `ch-${stem}-`));
    return {
      host: options.host ?? options.netns?.nsAddress ?? '127.0.0.1',
      port: options.port ?? (await freePort()),
      dir,
      netns: options.netns?.name,
    };
  }

  abstract get location(): Location;

  /** The server's pid; throws when it is not running. */
  get pid(): number {
    const pid = this.readPid();
    if (pid === undefined || !isAlive(pid)) throw new Error(`${this.program.name} on port ${this.port} is not running`);
    return pid;
  }

  isRunning(): boolean {
    const pid = this.readPid();
    return pid !== undefined && isAlive(pid);
  }

  /** The server's log so far (every run of it: startAgain() appends). */
  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Starts the server on the same port if it is not running; returns once it answers (see ready()). */
  async startAgain(): Promise<void> {
    if (!this.isRunning()) {
      // A SIGKILLed server leaves its pid file; a recycled pid in it would read as running.
      rmSync(this.pidFile, { force: true });
      const argv = this.daemonCommand();
      const command = this.netns ? ['ip', 'netns', 'exec', this.netns, ...argv] : argv;
      if (this.program.foreground) return this.startDetached(command);
      // The command returns once the server forked into the background, and the server keeps no pipe of ours open.
      const child = spawn(command[0]!, command.slice(1), { stdio: 'ignore' });
      const [code] = (await once(child, 'exit')) as [number | null];
      if (code !== 0) throw this.didNotStart(code);
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

  /** kill(), then startAgain() on the same port: clients see a FIN and the server behind it again. */
  async restart(): Promise<void> {
    await this.kill();
    await this.startAgain();
  }

  /** Shuts down and removes the temporary folder. Idempotent; a no-op on an attached server. */
  async stop(): Promise<void> {
    if (!this.owned || this.stopped) return;
    this.stopped = true;
    this.forgetExitTask?.();
    await this.kill();
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  /**
   * The command that starts the server in the background, writing the pid file, and exits; for a foreground
   * program, the command that runs the server (and writes the pid file).
   */
  protected abstract daemonCommand(): string[];

  /**
   * One readiness check: true once the server answers as it should, false while it is not there yet (a
   * refused or closed connection); throws what waiting will not change (a refused login, say).
   */
  protected abstract ready(): Promise<boolean>;

  /**
   * Writes the configuration (a subclass's own) and starts the server; stops it and removes the folder when
   * either fails, so a failed start leaves nothing behind.
   */
  protected async launch(configure: () => Promise<void>): Promise<this> {
    try {
      await configure();
      await this.startAgain();
      return this;
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  protected get configFile(): string {
    return path.join(this.dir, `${this.program.stem}.conf`);
  }

  protected get pidFile(): string {
    return path.join(this.dir, `${this.program.stem}.pid`);
  }

  protected get logFile(): string {
    return path.join(this.dir, 'log');
  }

  protected logTail(): string {
    return this.log().trimEnd().split('\n').slice(-10).join('\n') || '(no log)';
  }

  /**
   * A foreground program: detached, so it keeps no pipe of ours and outlives a test file that started it for
   * the whole run (the pid file finds it again). Its command never returns while it runs, so its exit before
   * it answers is its failure to start.
   */
  private async startDetached(command: string[]): Promise<void> {
    const child = spawn(command[0]!, command.slice(1), { stdio: 'ignore', detached: true });
    child.unref();
    const exited = once(child, 'exit').then(([code]) => code as number | null);
    const ready = this.waitUntilReady();
    const first = await Promise.race([ready.then(() => 'ready' as const), exited]);
    if (first !== 'ready') {
      ready.catch(() => undefined);
      throw this.didNotStart(first);
    }
  }

  private didNotStart(code: number | null): Error {
    return new Error(`${this.program.name} on port ${this.port} did not start (exit ${code}); log tail:\n${this.logTail()}`);
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
    while (!(await this.ready())) {
      if (Date.now() > deadline) throw new Error(`${this.program.name} at ${this.host}:${this.port} never answered; log tail:\n${this.logTail()}`);
      await sleep(20);
    }
  }

  /** Synchronous, for process exit: just make sure nothing outlives the process. */
  private destroyNow(): void {
    const pid = this.readPid();
    if (pid !== undefined) killNow([pid]);
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }
}
