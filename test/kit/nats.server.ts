import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DaemonServer, type DaemonLocation, type DaemonStartOptions } from './daemon.server.js';
import { freePort, waitUntilDead } from './process.util.js';

/** Who may connect: anyone (the default), users with passwords, or one token. */
export type NatsAuth = { users: Record<string, string> } | { token: string };

/** `port` is the client port. */
export interface NatsStartOptions extends DaemonStartOptions {
  /** HTTP monitoring port (/healthz, /connz, /varz). Default: a free high port. */
  httpPort?: number;
  /** Default: none, anyone may connect. */
  auth?: NatsAuth;
  /**
   * Per user (of `auth.users`): subjects the server refuses them to subscribe to (a permissions violation,
   * the connection stays up). Default: none refused. Change it later with denySubscriptions().
   */
  denySubscribe?: Record<string, string[]>;
}

/** Everything another process needs to reach, kick, kill and start again a running server. */
export interface NatsLocation extends DaemonLocation {
  httpPort: number;
  auth?: NatsAuth;
}

/** One client connection as /connz?auth=true lists it (the fields the kit uses). */
export interface NatsConnectionInfo {
  cid: number;
  ip: string;
  port: number;
  name?: string;
  authorized_user?: string;
  subscriptions: number;
  lang?: string;
  version?: string;
}

/**
 * A throwaway nats-server (2.9, Debian's) run as a plain background process, for end-to-end tests: no
 * JetStream, nothing persisted, so kill() and startAgain() give an empty server on the same ports in
 * milliseconds. Server-side faults:
 * - kick(): the server closes client connections (a FIN, no -ERR). 2.9 has no kick request (the system
 *   account's `$SYS.REQ.SERVER.<id>.KICK` came with 2.10), so the kit revokes the clients' credentials by a
 *   configuration reload (SIGHUP), which makes the server drop every connection that no longer passes
 *   authorization, then restores them by a second reload. A client that logs in again between the two
 *   reloads is refused ("Authorization Violation"); the window is some 10-70 ms, below nats.js' 2 s
 *   reconnect wait, but a client whose last dial is older than its wait redials at once, and nats.js gives
 *   up for good on a second Authorization Violation (unless ignoreAuthErrorAbort). A 2.10 KICK sends no -ERR.
 * - lameDuck(): lame duck mode (SIGUSR2, as `nats-server --signal ldm`): the server stops accepting, tells
 *   clients (INFO with `ldm: true`), closes them after a 1 s grace period, spread over 30 s (the minimum
 *   2.9 accepts: one client goes at once, many one by one), then exits; startAgain() brings it back.
 * - kill(): SIGKILL, like a crash or an OOM kill: the kernel closes every client socket with a FIN.
 * nats-server cannot daemonize, so the base detaches it; it is found through its pid file, so any process
 * holding the location (see attach) can do all of it.
 */
export class NatsServer extends DaemonServer<NatsLocation> {
  readonly httpPort: number;
  readonly auth: NatsAuth | undefined;
  private denySubscribe: Record<string, string[]>;

  private constructor(location: NatsLocation, owned: boolean, denySubscribe: Record<string, string[]> = {}) {
    super(location, owned, { name: 'nats-server', stem: 'nats', foreground: true });
    ({ httpPort: this.httpPort, auth: this.auth } = location);
    this.denySubscribe = { ...denySubscribe };
  }

  /** Writes a configuration and starts the server (a few ms); returns once it answers PING with PONG. */
  static async start(options: NatsStartOptions = {}): Promise<NatsServer> {
    const place = await DaemonServer.place('nats', options);
    let httpPort = options.httpPort ?? (await freePort());
    while (httpPort === place.port) httpPort = await freePort();
    const server = new NatsServer({ ...place, httpPort, auth: options.auth }, true, options.denySubscribe);
    return server.launch(() => server.writeConfig(server.auth));
  }

  /**
   * A handle on a server another process started (the test runner, say). Everything but stop() works
   * on it; stop() does nothing, because the server belongs to the process that started it.
   */
  static attach(location: NatsLocation): NatsServer {
    return new NatsServer(location, false);
  }

  get location(): NatsLocation {
    const { host, port, httpPort, dir, netns, auth } = this;
    return { host, port, httpPort, dir, netns, auth };
  }

  /** `nats://host:port`, as the `nats` client takes it in `servers` (credentials go in `user`/`pass`/`token`). */
  get url(): string {
    return `nats://${this.host}:${this.port}`;
  }

  /**
   * SIGSTOP, as the base; resolves once every thread has stopped: the signal reaches the Go runtime's threads
   * one by one, and one still running would answer a request sent right after.
   */
  override async pause(): Promise<void> {
    const pid = this.pid;
    super.pause();
    const deadline = Date.now() + 5_000;
    while (!allThreadsStopped(pid)) {
      if (Date.now() > deadline) throw new Error(`nats-server ${pid} did not stop within 5 s`);
      await sleep(1);
    }
  }

  /**
   * The server-side kick (see the class comment for why a reload): closes the connections of `user` (with
   * user/password auth), or of every client when no user is given, with a FIN; returns their count. The
   * credentials are back when it returns, so the kicked clients may log in again. `onRevoke` runs just
   * before the server is told to reload (after the kit read /connz), to time the kick from the moment it was sent.
   */
  async kick(user?: string, onRevoke?: () => void): Promise<number> {
    if (user !== undefined && !(this.auth && 'users' in this.auth && user in this.auth.users)) {
      throw new Error(`kick(${JSON.stringify(user)}): the server has no such user; start it with auth: { users: { ... } }`);
    }
    const targets = (await this.connections()).filter((one) => user === undefined || one.authorized_user === user);
    const cids = new Set(targets.map((one) => one.cid));
    await this.reload(this.authWithout(user), onRevoke);
    try {
      const deadline = Date.now() + 10_000;
      while ((await this.connections()).some((one) => cids.has(one.cid))) {
        if (Date.now() > deadline) throw new Error(`kick: the server still holds connections ${[...cids].join(', ')}; log tail:\n${this.logTail()}`);
        await sleep(10);
      }
    } finally {
      await this.reload(this.auth);
    }
    return targets.length;
  }

  /**
   * Lame duck mode: the server stops accepting, sends every client an INFO with `ldm: true`, closes them
   * after the 1 s grace period (spread over 30 s when there are several) and exits. Resolves once it has
   * exited; startAgain() brings it back on the same ports.
   */
  async lameDuck(): Promise<void> {
    const pid = this.pid;
    process.kill(pid, 'SIGUSR2');
    await waitUntilDead([pid], 60_000);
  }

  /** The client connections the server holds now (/connz?auth=true), the kit's own probes excluded. */
  async connections(): Promise<NatsConnectionInfo[]> {
    const body = (await this.monitor('/connz?auth=true&limit=10000')) as { connections: NatsConnectionInfo[] | null };
    return (body.connections ?? []).filter((one) => one.name !== KIT_CLIENT_NAME);
  }

  /** GET a monitoring endpoint (/varz, /connz, /subsz, /healthz ...) and return its JSON. */
  async monitor(pathAndQuery: string): Promise<unknown> {
    const response = await fetch(`http://${this.host}:${this.httpPort}${pathAndQuery}`, { signal: AbortSignal.timeout(5_000) });
    if (!response.ok) throw new Error(`nats-server monitoring ${pathAndQuery}: HTTP ${response.status}`);
    return response.json();
  }

  /**
   * One raw PING on a short-lived connection (CONNECT with the server's credentials first); resolves with
   * the server's INFO once PONG came back, rejects with the server's -ERR. No client library, so the kit
   * does not depend on the one under test.
   */
  async ping(): Promise<Record<string, unknown>> {
    const socket = net.connect({ host: this.host, port: this.port });
    socket.setTimeout(5_000, () => socket.destroy(new Error(`nats-server at ${this.host}:${this.port}: no PONG within 5 s`)));
    try {
      let received = '';
      let info: Record<string, unknown> | undefined;
      const done = new Promise<Record<string, unknown>>((resolve, reject) => {
        socket.on('error', reject);
        socket.on('close', () => reject(new Error('nats-server closed the connection before PONG')));
        socket.on('data', (chunk: Buffer) => {
          received += chunk.toString('utf8');
          for (let end = received.indexOf('\r\n'); end >= 0; end = received.indexOf('\r\n')) {
            const line = received.slice(0, end);
            received = received.slice(end + 2);
            if (line.startsWith('INFO ')) {
              info = JSON.parse(line.slice(5)) as Record<string, unknown>;
              socket.write(`CONNECT ${JSON.stringify({ ...this.credentials(), name: KIT_CLIENT_NAME, verbose: false, pedantic: false, protocol: 1 })}\r\nPING\r\n`);
            } else if (line === 'PONG') resolve(info!);
            else if (line.startsWith('-ERR')) reject(new NatsServerError(line.slice(5)));
          }
        });
      });
      return await done;
    } finally {
      socket.destroy();
    }
  }

  private credentials(): Record<string, string> {
    if (!this.auth) return {};
    if ('token' in this.auth) return { auth_token: this.auth.token };
    const [user, pass] = Object.entries(this.auth.users)[0]!;
    return { user, pass };
  }

  /**
   * The authorization that drops the kicked clients: every user but `user`; for "everyone", a single user
   * nobody knows. Either way the server drops whoever no longer passes it, and the kit's own PING cannot
   * log in meanwhile, which is why kick() watches /connz instead.
   */
  private authWithout(user: string | undefined): NatsAuth {
    if (user !== undefined && this.auth && 'users' in this.auth) {
      const { [user]: _kicked, ...others } = this.auth.users;
      if (Object.keys(others).length > 0) return { users: others };
    }
    return { users: { [`kicked-${process.pid}-${Date.now()}`]: `${Math.random()}` } };
  }

  /**
   * The subjects `user` may not subscribe to from now on (none: every subscription allowed), by a
   * configuration reload: the server applies it to the connections it holds, which stay up.
   */
  async denySubscriptions(user: string, subjects: string[]): Promise<void> {
    if (!(this.auth && 'users' in this.auth && user in this.auth.users)) {
      throw new Error(`denySubscriptions(${JSON.stringify(user)}): the server has no such user; start it with auth: { users: { ... } }`);
    }
    this.denySubscribe = { ...this.denySubscribe, [user]: subjects };
    await this.reload(this.auth);
  }

  /** Rewrites the configuration with `auth` and makes the server read it (SIGHUP, `--signal reload`). */
  private async reload(auth: NatsAuth | undefined, onSignal?: () => void): Promise<void> {
    const before = this.log().split('Reloaded server configuration').length;
    await this.writeConfig(auth);
    onSignal?.();
    process.kill(this.pid, 'SIGHUP');
    const deadline = Date.now() + 10_000;
    while (this.log().split('Reloaded server configuration').length === before) {
      if (Date.now() > deadline) throw new Error(`nats-server on port ${this.port} did not reload; log tail:\n${this.logTail()}`);
      await sleep(5);
    }
  }

  private async writeConfig(auth: NatsAuth | undefined): Promise<void> {
    const q = (value: string): string => JSON.stringify(value);
    const lines = [
      `listen: ${q(`${this.host}:${this.port}`)}`,
      `http: ${q(`${this.host}:${this.httpPort}`)}`,
      `pid_file: ${q(this.pidFile)}`,
      `log_file: ${q(this.logFile)}`,
      // 30 s is the least 2.9 accepts (the default is 2 min); the grace period before the first close may be shorter.
      'lame_duck_duration: "30s"',
      'lame_duck_grace_period: "1s"',
      // The server's own pings to clients stay at their defaults (2 min, 2 out), so only injected faults end one.
      ...(auth === undefined
        ? []
        : 'token' in auth
          ? [`authorization { token: ${q(auth.token)} }`]
          : [`authorization { users: [ ${Object.entries(auth.users).map(([user, password]) => `{ user: ${q(user)}, password: ${q(password)}${this.permissionsOf(user)} }`).join(', ')} ] }`]),
    ];
    await writeFile(this.configFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  }

  /** A user's permissions block: only a subscribe deny list, so everything else stays allowed. */
  private permissionsOf(user: string): string {
    const denied = this.denySubscribe[user] ?? [];
    return denied.length === 0 ? '' : `, permissions: { subscribe: { deny: [ ${denied.map((subject) => JSON.stringify(subject)).join(', ')} ] } }`;
  }

  /** The server logs to the file and writes the pid file as its configuration says; it stays in the foreground. */
  protected daemonCommand(): string[] {
    return ['nats-server', '-c', this.configFile];
  }

  protected async ready(): Promise<boolean> {
    try {
      await this.ping();
      return true;
    } catch (error) {
      // A refused connection means "not there yet"; an -ERR (a wrong password) will not get better.
      if (error instanceof NatsServerError) throw error;
      return false;
    }
  }
}

/** Every thread of `pid` in state T (stopped) or t (traced). */
function allThreadsStopped(pid: number): boolean {
  return readdirSync(`/proc/${pid}/task`).every((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return /^[Tt]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '');
  });
}

/** The name of the kit's own short-lived connections, so connections() can leave them out. */
const KIT_CLIENT_NAME = 'connection-health-kit';

/** An -ERR line from the server (`'Authorization Violation'`). */
class NatsServerError extends Error {
  override name = 'NatsServerError';
}
