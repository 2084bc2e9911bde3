import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { appendFile, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanupAtExit } from './exit-cleanup.js';
import type { NetworkNamespace } from './network-namespace.js';
import { childrenOf, freePort, isAlive, killNow, run, waitUntilDead } from './process.util.js';
import { makeSelfSignedCertificate } from './self-signed-certificate.js';

export interface DovecotStartOptions {
  /** Default: a free high port. */
  port?: number;
  /** The listen address, also used by clients. Default: the namespace's address, else 127.0.0.1. */
  host?: string;
  /** Run the server inside this network namespace, so kernel-level faults can be injected around it. */
  netns?: Pick<NetworkNamespace, 'name' | 'nsAddress'>;
  /**
   * Serve TLS with a self-signed certificate the kit makes for `host` and localhost (see `certificate`):
   * STARTTLS on `port`, IMAPS on `tlsPort`. Without it the server has no TLS at all, so it offers no STARTTLS.
   */
  tls?: boolean;
  /** The IMAPS port, with `tls`. Default: a free high port. */
  tlsPort?: number;
  /** SASL mechanisms offered, e.g. ['plain', 'login', 'xoauth2', 'oauthbearer']. Default ['plain', 'login']. */
  authMechanisms?: readonly string[];
}

/** Everything another process needs to reach, kick, kill and start again a running server. */
export interface DovecotLocation {
  host: string;
  port: number;
  /** The temporary folder: dovecot.conf, users, mail/, rawlog/, run/ (base_dir with master.pid) and the log. */
  dir: string;
  /** Name of the network namespace the server runs in, if any. */
  netns?: string;
  /** The IMAPS port, when the server serves TLS (its certificate is DIR/tls/cert.pem). */
  tlsPort?: number;
}

/** One IMAP session as dovecot's `doveadm who -1` lists it. */
export interface DovecotSession {
  user: string;
  pid: number;
  ip: string;
}

/** One line of a session's raw log, stamped by dovecot when it read (a command) or wrote (a response) it. */
export interface WireLine {
  /** Epoch milliseconds. */
  at: number;
  line: string;
}

/** What one post-login session said and heard, from dovecot's rawlog (LOGIN itself is never in it). */
export interface SessionTranscript {
  /** The rawlog file stem: date-time.pid.counter. */
  id: string;
  commands: WireLine[];
  responses: WireLine[];
}

/**
 * A throwaway dovecot IMAP server run as plain background processes, for end-to-end tests: one user
 * (test / test), maildir under the temporary folder, no login delays, and no TLS unless asked for (then
 * with a certificate of its own, STARTTLS offered but not demanded, and an IMAPS port). Server-side faults:
 * kick() (BYE, then FIN), kill() of the user's imap processes (FIN) and killServer() (everything, like
 * a crash). Every session's raw traffic after login is logged with timestamps (rawlog), so tests read
 * on the server side what the client really sent and when. The master is found through its pid file,
 * so any process holding the location (see attach) can kill and start it again.
 */
export class DovecotServer {
  static readonly user = 'test';
  static readonly password = 'test';
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly netns: string | undefined;
  readonly tlsPort: number | undefined;
  private stopped = false;
  private readonly forgetExitTask: (() => void) | undefined;

  private constructor(location: DovecotLocation, private readonly owned: boolean) {
    ({ host: this.host, port: this.port, dir: this.dir, netns: this.netns, tlsPort: this.tlsPort } = location);
    this.forgetExitTask = owned ? cleanupAtExit(() => this.destroyNow()) : undefined;
  }

  /** Writes a configuration and starts the server (about 20 ms); returns once it sends its greeting. */
  static async start(options: DovecotStartOptions = {}): Promise<DovecotServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ch-imap-'));
    const server = new DovecotServer(
      {
        host: options.host ?? options.netns?.nsAddress ?? '127.0.0.1',
        port: options.port ?? (await freePort()),
        dir,
        netns: options.netns?.name,
        ...(options.tls ? { tlsPort: options.tlsPort ?? (await freePort()) } : {}),
      },
      true,
    );
    try {
      await server.writeConfig(options.authMechanisms ?? ['plain', 'login']);
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
  static attach(location: DovecotLocation): DovecotServer {
    if (!existsSync(path.join(location.dir, 'dovecot.conf'))) {
      throw new Error(`no dovecot configuration in ${location.dir}: was the server that owned it stopped already?`);
    }
    return new DovecotServer(location, false);
  }

  get location(): DovecotLocation {
    return { host: this.host, port: this.port, dir: this.dir, netns: this.netns, tlsPort: this.tlsPort };
  }

  /** The PEM certificate of a TLS server, which is also its CA: give it to clients as `ca`. */
  get certificate(): string {
    if (this.tlsPort === undefined) throw new Error(`dovecot on port ${this.port} serves no TLS`);
    return readFileSync(path.join(this.dir, 'tls', 'cert.pem'), 'utf8');
  }

  /** dovecot's log so far: logins ("Login: user=<test>, ..., TLS") and failed attempts are in it. */
  log(): string {
    try {
      return readFileSync(path.join(this.dir, 'log'), 'utf8');
    } catch {
      return '';
    }
  }

  get configFile(): string {
    return path.join(this.dir, 'dovecot.conf');
  }

  /** The master's pid; throws when the server is not running. */
  get pid(): number {
    const pid = this.readPid();
    if (pid === undefined || !isAlive(pid)) throw new Error(`dovecot on port ${this.port} is not running`);
    return pid;
  }

  isRunning(): boolean {
    const pid = this.readPid();
    return pid !== undefined && isAlive(pid);
  }

  /** Starts the master if it is not running, and waits for the IMAP greeting. */
  async startAgain(): Promise<void> {
    if (!this.isRunning()) {
      rmSync(this.pidFile, { force: true });
      const argv = ['dovecot', '-c', this.configFile];
      const command = this.netns ? ['ip', 'netns', 'exec', this.netns, ...argv] : argv;
      // Without -F dovecot forks its master into the background and returns once it listens. The master
      // keeps the stdio it inherits, so a pipe (execFile's) would stay open until it exits: none here.
      const child = spawn(command[0]!, command.slice(1), { stdio: 'ignore' });
      const [code] = (await once(child, 'exit')) as [number | null];
      if (code !== 0) throw new Error(`dovecot on port ${this.port} did not start (exit ${code}); log tail:\n${this.logTail()}`);
    }
    await this.waitForGreeting();
  }

  /** The IMAP sessions the server holds now (`doveadm who -1`), optionally of one user. */
  async who(user?: string): Promise<DovecotSession[]> {
    const out = await run('doveadm', ['-c', this.configFile, 'who', '-1']);
    return out
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields.length >= 4 && /^\d+$/.test(fields[2]!))
      .map(([name, , pid, ip]) => ({ user: name!, pid: Number(pid), ip: ip! }))
      .filter((session) => user === undefined || session.user === user);
  }

  /** Ends every session of `user` the polite way: `* BYE`, then FIN. Returns how many there were. */
  async kick(user = DovecotServer.user): Promise<number> {
    const sessions = await this.who(user);
    await run('doveadm', ['-c', this.configFile, 'kick', user]);
    return sessions.length;
  }

  /** SIGKILLs the imap processes of `user`, like an OOM kill: the kernel sends FIN, no BYE. Returns their pids. */
  async kill(user = DovecotServer.user): Promise<number[]> {
    const pids = [...new Set((await this.who(user)).map((session) => session.pid))];
    killNow(pids);
    await waitUntilDead(pids);
    return pids;
  }

  /** SIGKILLs the master and every child, like a crash: clients get FIN, new connections are refused. */
  async killServer(): Promise<void> {
    await waitUntilDead(this.signalAll());
    rmSync(this.pidFile, { force: true });
  }

  /**
   * The sessions logged so far, oldest first; with `since` (epoch ms) only those that sent or received
   * anything from then on. Dovecot writes the rawlog as it goes, so an open session's lines are there too.
   */
  transcripts(since = 0): SessionTranscript[] {
    const dir = path.join(this.dir, 'rawlog');
    const stems = new Set(readdirSync(dir).map((file) => file.replace(/\.(in|out)$/, '')));
    return [...stems]
      .map((id) => ({ id, commands: readRawlog(path.join(dir, `${id}.in`)), responses: readRawlog(path.join(dir, `${id}.out`)) }))
      .filter((t) => [...t.commands, ...t.responses].some((l) => l.at >= since))
      .sort((a, b) => firstAt(a) - firstAt(b));
  }

  /** Shuts down (SIGTERM, then SIGKILL) and removes the temporary folder. Idempotent; a no-op on an attached server. */
  async stop(): Promise<void> {
    if (!this.owned || this.stopped) return;
    this.stopped = true;
    this.forgetExitTask?.();
    const pid = this.readPid();
    if (pid !== undefined && isAlive(pid)) {
      const pids = [pid, ...childrenOf(pid)];
      process.kill(pid, 'SIGTERM');
      await waitUntilDead(pids, 5_000).catch(() => waitUntilDead(this.signalAll()));
    }
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  private get pidFile(): string {
    return path.join(this.dir, 'run', 'master.pid');
  }

  private readPid(): number | undefined {
    try {
      const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Adds a user that logs in with `password`, which may hold any character (stored base64-encoded, so a
   * `:` cannot end the field). Dovecot reads the users file again at the next login.
   */
  async addUser(user: string, password: string): Promise<void> {
    await appendFile(path.join(this.dir, 'users'), `${user}:{PLAIN.b64}${Buffer.from(password).toString('base64')}\n`);
  }

  private async writeConfig(authMechanisms: readonly string[]): Promise<void> {
    const { dir } = this;
    const root = process.getuid?.() === 0;
    // Root runs the mail processes as nobody, who must reach the mail and rawlog folders inside dir.
    await chmod(dir, 0o755);
    await mkdir(path.join(dir, 'mail'));
    await mkdir(path.join(dir, 'rawlog'));
    const owner = root ? 'uid=nobody gid=nogroup' : `uid=${process.getuid?.()} gid=${process.getgid?.()}`;
    if (root) await run('chown', ['nobody:nogroup', path.join(dir, 'mail'), path.join(dir, 'rawlog')]);
    await writeFile(path.join(dir, 'users'), `${DovecotServer.user}:{PLAIN}${DovecotServer.password}\n`);
    const user = os.userInfo().username;
    const unprivileged = root
      ? ''
      : `default_internal_user = ${user}\ndefault_login_user = ${user}\ndefault_internal_group = ${os.userInfo().gid}\n` +
        'service anvil {\n  chroot =\n}\n';
    // disable_plaintext_auth = no even with TLS: a client must upgrade on its own, not because the server demands it.
    const tls = this.tlsPort === undefined ? undefined : await makeSelfSignedCertificate(dir, [this.host, 'localhost', '127.0.0.1']);
    const ssl = tls ? `ssl = yes\nssl_cert = <${tls.cert}\nssl_key = <${tls.key}` : 'ssl = no';
    const config = `# Written by test/kit/dovecot.server.ts for one test run.
protocols = imap
listen = ${this.host}
${ssl}
disable_plaintext_auth = no
auth_mechanisms = ${authMechanisms.join(' ')}
auth_failure_delay = 0
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100
first_valid_uid = 1
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/log
${unprivileged}passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/users
}
userdb {
  driver = static
  args = ${owner} home=${dir}/mail/%u
}
service imap-login {
  inet_listener imap {
    address = ${this.host}
    port = ${this.port}
  }
  inet_listener imaps {
    address = ${this.host}
    port = ${this.tlsPort ?? 0}
  }
  # One long-lived login process, always there: otherwise about one connection in three first sees
  # "Waiting for authentication process".
  service_count = 0
  process_min_avail = 1${root ? '' : '\n  chroot ='}
}
protocol imap {
  rawlog_dir = ${dir}/rawlog
}
`;
    await writeFile(this.configFile, config);
  }

  private async waitForGreeting(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const greeting = await readGreeting(this.host, this.port);
        if (greeting.startsWith('* OK')) return;
        throw new Error(`unexpected greeting: ${greeting}`);
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(`dovecot at ${this.host}:${this.port} never greeted; log tail:\n${this.logTail()}`, { cause: error });
        }
        await sleep(20);
      }
    }
  }

  /** SIGKILLs the master and its children; returns their pids. */
  private signalAll(): number[] {
    const pid = this.readPid();
    if (pid === undefined || !isAlive(pid)) return [];
    // Stopped first, so it cannot fork a new process between listing its children and their death.
    try {
      process.kill(pid, 'SIGSTOP');
    } catch {
      return [];
    }
    const pids = [pid, ...childrenOf(pid)];
    killNow(pids);
    return pids;
  }

  private logTail(): string {
    try {
      return readFileSync(path.join(this.dir, 'log'), 'utf8').trimEnd().split('\n').slice(-10).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Synchronous, for process exit: no graceful shutdown, just make sure nothing outlives the process. */
  private destroyNow(): void {
    this.signalAll();
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** Connects, reads the first line, hangs up (RST-free: LOGOUT is not needed before login). */
function readGreeting(host: string, port: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const socket = net.connect({ host, port });
    let buffer = '';
    const timer = setTimeout(() => finish(new Error('no greeting within 2 s')), 2_000);
    const finish = (error: Error | undefined, line?: string) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(line!);
    };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\r\n');
      if (end >= 0) finish(undefined, buffer.slice(0, end));
    });
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error('closed before the greeting')));
  });
}

/** Rawlog lines look like "1795280044.971729 A5 noop": seconds.microseconds, a space, the line. */
function readRawlog(file: string): WireLine[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((raw) => /^(\d+\.\d+) (.*)$/.exec(raw.replace(/\r$/, '')))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ at: Number(match[1]) * 1000, line: match[2]! }));
}

function firstAt(transcript: SessionTranscript): number {
  return Math.min(...[...transcript.commands, ...transcript.responses].map((l) => l.at), Infinity);
}

