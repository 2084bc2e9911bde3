import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cleanupAtExit } from './exit-cleanup.js';
import { childrenOf, freePort, isAlive, killNow, waitUntilDead } from './process.util.js';
import { makeSelfSignedCertificate } from './self-signed-certificate.js';
import { waitForStomp } from './stomp.util.js';

const RABBITMQ_BIN = '/usr/lib/rabbitmq/bin';
const EPMD = '/usr/bin/epmd';

/** Everything another process needs to reach, kill and start again a running broker. */
export interface RabbitMqLocation {
  host: string;
  /** STOMP over TCP. */
  port: number;
  /** STOMP over WebSocket, at ws://host:webStompPort/ws. */
  webStompPort: number;
  /** STOMP over TLS, with a self-signed certificate for 127.0.0.1 and localhost (tls/cert.pem, its own CA). */
  tlsPort: number;
  /** The temporary folder: config, Mnesia, logs, the Erlang cookie and the pid files; location.json too. */
  dir: string;
}

interface Layout extends RabbitMqLocation {
  amqpPort: number;
  distPort: number;
  epmdPort: number;
  nodeName: string;
}

/**
 * A throwaway RabbitMQ 3 broker (Debian's package) with the STOMP (plain and TLS) and Web-STOMP plugins, run as plain
 * background processes under a temporary folder with its own epmd, for end-to-end tests. Starting takes
 * 7 s on an idle 2-core machine and up to a minute on a busy one. Every process is found through pid
 * files in its folder, so any process holding the location (see attach) can kill and start it again.
 */
export class RabbitMqServer {
  readonly host: string;
  readonly port: number;
  readonly webStompPort: number;
  readonly tlsPort: number;
  readonly dir: string;
  private stopped = false;
  private readonly forgetExitTask: (() => void) | undefined;

  private constructor(private readonly layout: Layout, private readonly owned: boolean) {
    ({ host: this.host, port: this.port, webStompPort: this.webStompPort, tlsPort: this.tlsPort, dir: this.dir } = layout);
    this.forgetExitTask = owned ? cleanupAtExit(() => this.destroyNow()) : undefined;
  }

  static async start(): Promise<RabbitMqServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ch-rabbitmq-'));
    const [port, webStompPort, tlsPort, amqpPort, distPort, epmdPort] = await distinctFreePorts(6);
    const layout: Layout = {
      host: '127.0.0.1',
      port,
      webStompPort,
      tlsPort,
      dir,
      amqpPort,
      distPort,
      epmdPort,
      nodeName: `ch${process.pid}x${path.basename(dir).replace(/[^a-zA-Z0-9]/g, '')}@localhost`,
    };
    const server = new RabbitMqServer(layout, true);
    try {
      await server.writeConfig();
      await server.startAgain();
      return server;
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  /** A handle on a broker another process started: kill(), startAgain() and closeAllConnections() work, stop() does nothing. */
  static async attach(location: Pick<RabbitMqLocation, 'dir'>): Promise<RabbitMqServer> {
    const file = path.join(location.dir, 'location.json');
    if (!existsSync(file)) throw new Error(`no RabbitMQ broker at ${location.dir}: was the process that owned it stopped already?`);
    return new RabbitMqServer(JSON.parse(await readFile(file, 'utf8')) as Layout, false);
  }

  get location(): RabbitMqLocation {
    return { host: this.host, port: this.port, webStompPort: this.webStompPort, tlsPort: this.tlsPort, dir: this.dir };
  }

  /** The PEM certificate of the TLS listener, which is also its CA: give it to clients as `ca`. */
  get certificate(): string {
    return readFileSync(path.join(this.dir, 'tls', 'cert.pem'), 'utf8');
  }

  get url(): string {
    return `stomp://${this.host}:${this.port}`;
  }

  /** AMQP 0-9-1 over TCP (guest/guest, virtual host '/'). */
  get amqpPort(): number {
    return this.layout.amqpPort;
  }

  get amqpUrl(): string {
    return `amqp://guest:guest@${this.host}:${this.amqpPort}`;
  }

  get webStompUrl(): string {
    return `ws://${this.host}:${this.webStompPort}/ws`;
  }

  isRunning(): boolean {
    const pid = this.readPid('server.pid');
    return pid !== undefined && isAlive(pid);
  }

  /** SIGKILLs the node (the start script, the Erlang VM and its helpers): clients see FIN from the kernel. */
  async kill(): Promise<void> {
    const pids = this.serverPids();
    killNow(pids);
    await waitUntilDead(pids);
  }

  /** Starts the node on the same folder and ports after kill(); returns once STOMP answers and the other listeners accept. */
  async startAgain(timeoutMs = 90_000): Promise<void> {
    if (!this.epmdRunning()) this.spawnDetached(EPMD, ['-address', '127.0.0.1', '-port', String(this.layout.epmdPort)], 'epmd.pid', 'epmd.log');
    if (!this.isRunning()) this.spawnDetached(path.join(RABBITMQ_BIN, 'rabbitmq-server'), [], 'server.pid', 'server.log');
    const deadline = Date.now() + timeoutMs;
    try {
      await waitForStomp(this.host, this.port, { login: 'guest', passcode: 'guest' }, timeoutMs, () => this.isRunning());
      await waitForListener(this.host, this.webStompPort, deadline - Date.now());
      await waitForListener(this.host, this.tlsPort, deadline - Date.now());
      await waitForListener(this.host, this.layout.amqpPort, deadline - Date.now());
    } catch (error) {
      throw new Error(`RabbitMQ on port ${this.port} did not start; log tail:\n${this.logTail()}`, { cause: error });
    }
  }

  /**
   * `rabbitmqctl close_all_connections`: every client gets an ERROR frame carrying `reason`, then FIN.
   * Returns what rabbitmqctl printed.
   */
  async closeAllConnections(reason: string): Promise<string> {
    return this.ctl(['close_all_connections', reason]);
  }

  /**
   * `rabbitmqctl close_connection` for every AMQP 0-9-1 connection: each client gets connection.close
   * (320 CONNECTION_FORCED, carrying `reason`), then FIN; STOMP clients are left alone. Returns how many it closed.
   */
  async closeAmqpConnections(reason: string): Promise<number> {
    const pids = (await this.ctl(['list_connections', '--no-table-headers', 'pid', 'protocol']))
      .split('\n')
      .filter((line) => line.trimEnd().endsWith('\t{0,9,1}'))
      .map((line) => line.split('\t')[0]!.trim());
    await Promise.all(pids.map((pid) => this.ctl(['close_connection', pid, reason])));
    return pids.length;
  }

  /** Adds a user with every permission on the default virtual host '/'. */
  async addUser(user: string, password: string): Promise<void> {
    await this.ctl(['add_user', user, password]);
    await this.ctl(['set_permissions', '-p', '/', user, '.*', '.*', '.*']);
  }

  /** Runs rabbitmqctl against this node, e.g. ['list_connections', 'name', 'state']. */
  ctl(args: readonly string[]): Promise<string> {
    return runWithEnv(path.join(RABBITMQ_BIN, 'rabbitmqctl'), ['--quiet', ...args], this.env());
  }

  /** Kills the node and its epmd, removes the folder. Idempotent; a no-op on an attached broker. */
  async stop(): Promise<void> {
    if (!this.owned || this.stopped) return;
    this.stopped = true;
    this.forgetExitTask?.();
    const pids = [...this.serverPids(), ...this.epmdPids()];
    killNow(pids);
    await waitUntilDead(pids).catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  private env(): NodeJS.ProcessEnv {
    const { dir, nodeName, distPort, epmdPort } = this.layout;
    return {
      ...process.env,
      // The Erlang cookie lands in $HOME; rabbitmqctl must read the same one.
      HOME: dir,
      RABBITMQ_NODENAME: nodeName,
      RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(dir, 'log'),
      RABBITMQ_PID_FILE: path.join(dir, 'beam.pid'),
      RABBITMQ_DIST_PORT: String(distPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      ERL_EPMD_PORT: String(epmdPort),
    };
  }

  private async writeConfig(): Promise<void> {
    const { dir, host, port, webStompPort, tlsPort, amqpPort } = this.layout;
    await mkdir(path.join(dir, 'mnesia'), { recursive: true });
    await mkdir(path.join(dir, 'log'), { recursive: true });
    const tls = await makeSelfSignedCertificate(dir, ['localhost', '127.0.0.1']);
    await writeFile(
      path.join(dir, 'rabbitmq.conf'),
      [
        `listeners.tcp.default = ${host}:${amqpPort}`,
        `stomp.listeners.tcp.1 = ${host}:${port}`,
        `web_stomp.tcp.ip = ${host}`,
        `web_stomp.tcp.port = ${webStompPort}`,
        `stomp.listeners.ssl.1 = ${host}:${tlsPort}`,
        `ssl_options.cacertfile = ${tls.cert}`,
        `ssl_options.certfile = ${tls.cert}`,
        `ssl_options.keyfile = ${tls.key}`,
        'ssl_options.verify = verify_none',
        'ssl_options.fail_if_no_peer_cert = false',
        // guest may then log in from any address, e.g. through the chaos proxy
        'loopback_users = none',
        'log.console = false',
        'log.file.level = warning',
        '',
      ].join('\n'),
    );
    await writeFile(path.join(dir, 'enabled_plugins'), '[rabbitmq_stomp,rabbitmq_web_stomp].\n');
    await writeFile(path.join(dir, 'location.json'), JSON.stringify(this.layout));
  }

  private spawnDetached(command: string, args: string[], pidFile: string, logFile: string): void {
    const log = openSync(path.join(this.dir, logFile), 'a');
    try {
      const child = spawn(command, args, { cwd: this.dir, env: this.env(), detached: true, stdio: ['ignore', log, log] });
      child.unref();
      if (child.pid === undefined) throw new Error(`could not start ${command}`);
      writeFileSync(path.join(this.dir, pidFile), String(child.pid));
    } finally {
      closeSync(log);
    }
  }

  /** The start script, the Erlang VM (its child) and the VM's helpers (erl_child_setup, inet_gethost). */
  private serverPids(): number[] {
    const script = this.readPid('server.pid');
    const roots = [script, this.readPid('beam.pid')].filter((pid): pid is number => pid !== undefined && isAlive(pid));
    const all = new Set<number>();
    const visit = (pid: number) => {
      if (all.has(pid)) return;
      all.add(pid);
      for (const child of childrenOf(pid)) visit(child);
    };
    roots.forEach(visit);
    return [...all];
  }

  private epmdRunning(): boolean {
    return this.epmdPids().length > 0;
  }

  private epmdPids(): number[] {
    const pid = this.readPid('epmd.pid');
    return pid !== undefined && isAlive(pid) ? [pid] : [];
  }

  private readPid(file: string): number | undefined {
    try {
      const pid = Number(readFileSync(path.join(this.dir, file), 'utf8').trim());
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private logTail(): string {
    const tails: string[] = [];
    for (const file of ['server.log', 'epmd.log', path.join('log', `${this.layout.nodeName}.log`)]) {
      try {
        tails.push(`${file}:\n${readFileSync(path.join(this.dir, file), 'utf8').trimEnd().split('\n').slice(-15).join('\n')}`);
      } catch {
        // not written yet
      }
    }
    return tails.join('\n') || '(no log)';
  }

  /** Synchronous, for process exit. */
  private destroyNow(): void {
    killNow([...this.serverPids(), ...this.epmdPids()]);
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

async function waitForListener(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + Math.max(timeoutMs, 1_000);
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function runWithEnv(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, timeout: 60_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${path.basename(command)} ${args.join(' ')} failed: ${stderr.trim() || error.message}`, { cause: error }));
      else resolve(stdout);
    });
  });
}
