import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { cleanupAtExit } from './exit-cleanup.js';
import type { NetworkNamespace } from './network-namespace.js';
import { childrenOf, freePort, isAlive, killNow, run, waitUntilDead } from './process.util.js';

export interface PostgresStartOptions {
  /** Default: a free high port. */
  port?: number;
  /** The listen address, also used by clients. Default: the namespace's address, else 127.0.0.1. */
  host?: string;
  /** Run the server inside this network namespace, so kernel-level faults can be injected around it. */
  netns?: Pick<NetworkNamespace, 'name' | 'nsAddress'>;
  /**
   * Check passwords (scram-sha-256) over TCP for every role but `postgres`, which the kit itself uses and
   * which stays trusted: for tests of logins that fail, and of what a client prints then. Default false.
   */
  passwords?: boolean;
}

/** Everything another process needs to reach, kill and start again a running server. */
export interface PostgresLocation {
  host: string;
  port: number;
  /** The temporary folder: data/ (the cluster), the log and the Unix socket. */
  dir: string;
  /** Name of the network namespace the server runs in, if any. */
  netns?: string;
}

/**
 * A throwaway PostgreSQL cluster run as plain background processes, for end-to-end tests.
 * The running postmaster is found through data/postmaster.pid rather than remembered, so any process
 * holding the location (see attach) can kill and start it again and `pid` stays true across restarts.
 */
export class PostgresServer {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly netns: string | undefined;
  private stopped = false;
  private readonly forgetExitTask: (() => void) | undefined;

  private constructor(location: PostgresLocation, private readonly owned: boolean) {
    ({ host: this.host, port: this.port, dir: this.dir, netns: this.netns } = location);
    this.forgetExitTask = owned ? cleanupAtExit(() => this.destroyNow()) : undefined;
  }

  /** Creates a fresh cluster (about 1 s, mostly initdb) and waits until it answers a query. */
  static async start(options: PostgresStartOptions = {}): Promise<PostgresServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ch-pg-'));
    const server = new PostgresServer(
      {
        host: options.host ?? options.netns?.nsAddress ?? '127.0.0.1',
        port: options.port ?? (await freePort()),
        dir,
        netns: options.netns?.name,
      },
      true,
    );
    try {
      // initdb and pg_ctl refuse to run as root, so the folder must belong to the user they run as.
      if (runsAsRoot()) await run('chown', ['postgres:postgres', dir]);
      const initdbArgs = ['-D', server.dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '--locale=C', '--encoding=UTF8'];
      await server.asPostgres('initdb', initdbArgs, false);
      // The default rules trust loopback only; clients in a namespace test arrive over the veth. The first
      // matching line wins, so the password rule replaces initdb's trusting ones.
      const hba = path.join(server.dataDir, 'pg_hba.conf');
      if (options.passwords) await writeFile(hba, 'local all all trust\nhost all postgres all trust\nhost all all all scram-sha-256\n');
      else await appendFile(hba, 'host all all all trust\n');
      await server.startAgain();
      return server;
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  /**
   * A handle on a server another process started (the test runner, say). kill(), startAgain() and
   * restart() work on it; stop() does nothing, because the server belongs to the process that started it.
   */
  static attach(location: PostgresLocation): PostgresServer {
    if (!existsSync(path.join(location.dir, 'data'))) {
      throw new Error(`no PostgreSQL cluster at ${location.dir}: was the server that owned it stopped already?`);
    }
    return new PostgresServer(location, false);
  }

  get url(): string {
    return `postgres://postgres@${this.host}:${this.port}/postgres`;
  }

  get location(): PostgresLocation {
    return { host: this.host, port: this.port, dir: this.dir, netns: this.netns };
  }

  /** The postmaster's pid; throws when the server is not running. */
  get pid(): number {
    const pid = this.readPid();
    if (pid === undefined || !isAlive(pid)) throw new Error(`PostgreSQL on port ${this.port} is not running`);
    return pid;
  }

  isRunning(): boolean {
    const pid = this.readPid();
    return pid !== undefined && isAlive(pid);
  }

  /** Runs one statement on a short-lived connection and returns the rows. */
  async query<Row extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<Row[]> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5_000 });
    // A backend dying mid-query also emits 'error'; the rejected promise already reports it.
    client.on('error', () => undefined);
    try {
      await client.connect();
      return (await client.query<Row>(sql, params)).rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Creates a role that may log in with `password` (checked only on a server started with `passwords`). */
  async createRole(name: string, password: string): Promise<void> {
    // Utility statements take no parameters: format() quotes the name and the password as PostgreSQL reads them.
    const [row] = await this.query<{ sql: string }>('SELECT format($$CREATE ROLE %I LOGIN PASSWORD %L$$, $1::text, $2::text) AS sql', [name, password]);
    await this.query(row!.sql);
  }

  /**
   * SIGKILLs the postmaster and all its children, like a crash or an OOM kill: clients see the
   * connection drop with no goodbye. The cluster stays usable: startAgain() runs crash recovery.
   */
  async kill(): Promise<void> {
    await waitUntilDead(this.signalAll());
    this.forgetStaleLocks();
  }

  /** Starts the server on the same data and port after kill() or restart's stop; returns once it answers. */
  async startAgain(): Promise<void> {
    if (!this.isRunning()) {
      this.forgetStaleLocks();
      const settings = `-p ${this.port} -k "${this.dir}" -c listen_addresses=${this.host} -c fsync=off`;
      const args = ['start', '-w', '-t', '60', '-D', this.dataDir, '-l', this.logFile, '-o', settings];
      await this.asPostgres('pg_ctl', args, true).catch((error: unknown) => {
        throw new Error(`PostgreSQL on port ${this.port} did not start; log tail:\n${this.logTail()}`, { cause: error });
      });
    }
    await this.waitUntilReady();
  }

  /** A clean restart (fast shutdown): clients get an "administrator command" error, then FIN. */
  async restart(): Promise<void> {
    if (this.isRunning()) await this.asPostgres('pg_ctl', ['stop', '-w', '-m', 'fast', '-D', this.dataDir], false);
    await this.startAgain();
  }

  /** Ends every other client session server-side and waits for them to go; returns how many. */
  async terminateBackends(): Promise<number> {
    // MATERIALIZED so the planner cannot evaluate pg_terminate_backend before excluding our own session.
    const rows = await this.query<{ terminated: number }>(`
      WITH victims AS MATERIALIZED (
        SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())
      SELECT (count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)))::int AS terminated FROM victims`);
    return rows[0]?.terminated ?? 0;
  }

  /** Shuts down (fast) and removes the temporary folder. Idempotent; a no-op on an attached server. */
  async stop(): Promise<void> {
    if (!this.owned || this.stopped) return;
    this.stopped = true;
    this.forgetExitTask?.();
    if (this.isRunning()) {
      await this.asPostgres('pg_ctl', ['stop', '-w', '-m', 'fast', '-D', this.dataDir], false).catch(() => this.kill());
    }
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  private get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  private get logFile(): string {
    return path.join(this.dir, 'log');
  }

  /** postmaster.pid: line 1 the pid, line 7 "key shmid" of its System V segment. */
  private lockFile(): string[] {
    try {
      return readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n');
    } catch {
      return [];
    }
  }

  private readPid(): number | undefined {
    const pid = Number(this.lockFile()[0]);
    return pid > 0 ? pid : undefined;
  }

  /** SIGKILLs the postmaster and its children; returns their pids. */
  private signalAll(): number[] {
    const pid = this.readPid();
    if (pid === undefined || !isAlive(pid)) return [];
    // Stopped first, so it cannot fork a new backend between listing its children and their death.
    try {
      process.kill(pid, 'SIGSTOP');
    } catch {
      return [];
    }
    const pids = [pid, ...childrenOf(pid)];
    killNow(pids);
    return pids;
  }

  /**
   * A postmaster refuses to start while the pid in a lock file still exists, and a killed one can
   * linger as a zombie when init is slow to reap it (it is here). Only called once it is dead.
   */
  private forgetStaleLocks(): void {
    if (this.isRunning()) return;
    this.removeSharedMemory();
    rmSync(path.join(this.dataDir, 'postmaster.pid'), { force: true });
    rmSync(path.join(this.dir, `.s.PGSQL.${this.port}.lock`), { force: true });
  }

  /**
   * A postmaster killed by SIGKILL leaves its small System V segment behind, and one whose folder is
   * then removed never comes back to reuse it. Removal is deferred by the kernel until the last detach.
   */
  private removeSharedMemory(): void {
    const shmid = this.lockFile()[6]?.trim().split(/\s+/)[1];
    if (!shmid) return;
    try {
      execFileSync('ipcrm', ['-m', shmid], { stdio: 'ignore' });
    } catch {
      // Already removed.
    }
  }

  private async waitUntilReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.query('SELECT 1');
        return;
      } catch (error) {
        // Network errors and 57P03 (starting up) mean "not there yet"; any other answer, a refused login say, will not change.
        const final = error instanceof pg.DatabaseError && error.code !== '57P03';
        if (final || Date.now() > deadline) throw new Error(`PostgreSQL at ${this.host}:${this.port} never answered`, { cause: error });
        await sleep(50);
      }
    }
  }

  private asPostgres(program: string, args: string[], inNamespace: boolean): Promise<string> {
    let argv = [path.join(postgresBinDir(), program), ...args];
    if (runsAsRoot()) argv = ['runuser', '-u', 'postgres', '--', ...argv];
    if (inNamespace && this.netns) argv = ['ip', 'netns', 'exec', this.netns, ...argv];
    return run(argv[0]!, argv.slice(1));
  }

  private logTail(): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-10).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Synchronous, for process exit: no graceful shutdown, just make sure nothing outlives the process. */
  private destroyNow(): void {
    this.removeSharedMemory();
    this.signalAll();
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

let binDir: string | undefined;

/** Debian installs each major version side by side; take the newest. */
function postgresBinDir(): string {
  if (binDir) return binDir;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error(`no PostgreSQL server under ${root}/*/bin: run scripts/install-servers.sh`);
  return (binDir = path.join(root, newest, 'bin'));
}

function runsAsRoot(): boolean {
  return process.getuid?.() === 0;
}

