import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cleanupAtExit } from './exit-cleanup.js';
import type { NetworkNamespace } from './network-namespace.js';
import { childrenOf, freePort, isAlive, killNow, waitUntilDead } from './process.util.js';
import { waitForStomp } from './stomp.util.js';

const ACTIVEMQ_HOME = '/usr/share/activemq';

/** The flags /usr/bin/activemq passes on Java 9+; without them the broker fails on reflective access. */
const JAVA_FLAGS = [
  '--add-reads=java.xml=java.logging',
  ...[
    'java.base/java.security',
    'java.base/java.net',
    'java.base/java.lang',
    'java.base/java.util',
    'java.naming/javax.naming.spi',
    'java.rmi/sun.rmi.transport.tcp',
    'java.base/java.util.concurrent',
    'java.base/java.util.concurrent.atomic',
  ].map((module) => `--add-opens=${module}=ALL-UNNAMED`),
];

export interface ActiveMqStartOptions {
  /** STOMP port. Default: a free high port. */
  port?: number;
  /** Listen address, also used by clients. Default: the namespace's address, else 127.0.0.1. */
  host?: string;
  /** Run the broker inside this network namespace, so kernel-level faults can be injected around it. */
  netns?: Pick<NetworkNamespace, 'name' | 'nsAddress'>;
  /**
   * Users whose passcode the broker checks (simpleAuthenticationPlugin); a CONNECT without a login is still
   * let in as anonymous. Default none: any login is accepted.
   */
  users?: ReadonlyArray<{ login: string; passcode: string }>;
}

/** Everything another process needs to reach, kill and start again a running broker. */
export interface ActiveMqLocation {
  host: string;
  port: number;
  /** The temporary folder: conf/, data/, the log and the pid file. */
  dir: string;
  netns?: string;
}

/**
 * A throwaway ActiveMQ 5 broker (Debian's package) with a STOMP connector, run as a plain background
 * java process, non-persistent and without JMX, for end-to-end tests: ready in about 1.5 s, ~90 MB.
 * The running JVM is found through the pid file in its folder, so any process holding the location
 * (see attach) can kill and start it again. Debian's package has no WebSocket connector (its
 * activemq-http module and Jetty are not packaged): STOMP over WebSocket is tested on RabbitMQ.
 */
export class ActiveMqServer {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly netns: string | undefined;
  private stopped = false;
  private readonly forgetExitTask: (() => void) | undefined;

  private constructor(location: ActiveMqLocation, private readonly owned: boolean) {
    ({ host: this.host, port: this.port, dir: this.dir, netns: this.netns } = location);
    this.forgetExitTask = owned ? cleanupAtExit(() => this.destroyNow()) : undefined;
  }

  static async start(options: ActiveMqStartOptions = {}): Promise<ActiveMqServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ch-activemq-'));
    const host = options.host ?? options.netns?.nsAddress ?? '127.0.0.1';
    const server = new ActiveMqServer({ host, port: options.port ?? (await freePort()), dir, netns: options.netns?.name }, true);
    try {
      await server.writeConfig(options.users ?? []);
      await server.startAgain();
      return server;
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  /** A handle on a broker another process started: kill() and startAgain() work, stop() does nothing. */
  static attach(location: ActiveMqLocation): ActiveMqServer {
    if (!existsSync(path.join(location.dir, 'conf', 'activemq.xml'))) {
      throw new Error(`no ActiveMQ broker at ${location.dir}: was the process that owned it stopped already?`);
    }
    return new ActiveMqServer(location, false);
  }

  get location(): ActiveMqLocation {
    return { host: this.host, port: this.port, dir: this.dir, netns: this.netns };
  }

  get url(): string {
    return `stomp://${this.host}:${this.port}`;
  }

  isRunning(): boolean {
    const pid = this.readPid();
    return pid !== undefined && isAlive(pid);
  }

  /** SIGKILLs the JVM, like a crash or an OOM kill: clients see their connections drop (FIN from the kernel). */
  async kill(): Promise<void> {
    const pid = this.readPid();
    if (pid === undefined || !isAlive(pid)) return;
    const pids = [pid, ...childrenOf(pid)];
    killNow(pids);
    await waitUntilDead(pids);
  }

  /** Starts the broker on the same folder and port after kill(); returns once it answers CONNECT. */
  async startAgain(timeoutMs = 60_000): Promise<void> {
    if (!this.isRunning()) this.spawn();
    await waitForStomp(this.host, this.port, {}, timeoutMs, () => this.isRunning()).catch((error: unknown) => {
      throw new Error(`ActiveMQ on port ${this.port} did not start; log tail:\n${this.logTail()}`, { cause: error });
    });
  }

  /** Kills the broker and removes its folder. Idempotent; a no-op on an attached broker. */
  async stop(): Promise<void> {
    if (!this.owned || this.stopped) return;
    this.stopped = true;
    this.forgetExitTask?.();
    await this.kill();
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  private spawn(): void {
    const java = [
      'java',
      '-Xms64m',
      '-Xmx256m',
      // The quick JIT tier only: a test broker starts sooner and never runs long enough to need the other.
      '-XX:TieredStopAtLevel=1',
      ...JAVA_FLAGS,
      `-Dactivemq.classpath=${this.confDir}:${ACTIVEMQ_HOME}/lib/`,
      `-Dactivemq.home=${ACTIVEMQ_HOME}`,
      `-Dactivemq.base=${this.dir}`,
      `-Dactivemq.conf=${this.confDir}`,
      `-Dactivemq.data=${this.dataDir}`,
      `-Dlog4j.configuration=file:${path.join(this.confDir, 'log4j.properties')}`,
      '-jar',
      `${ACTIVEMQ_HOME}/bin/activemq.jar`,
      'start',
      `xbean:file:${path.join(this.confDir, 'activemq.xml')}`,
    ];
    // `ip netns exec` execs the command, so the pid stays the JVM's.
    const argv = this.netns ? ['ip', 'netns', 'exec', this.netns, ...java] : java;
    const log = openSync(this.logFile, 'a');
    try {
      const child = spawn(argv[0] as string, argv.slice(1), { cwd: this.dir, detached: true, stdio: ['ignore', log, log] });
      child.unref();
      if (child.pid === undefined) throw new Error(`could not start ${argv[0]}`);
      writeFileSync(this.pidFile, String(child.pid));
    } finally {
      closeSync(log);
    }
  }

  private async writeConfig(users: ReadonlyArray<{ login: string; passcode: string }>): Promise<void> {
    const authentication = users.length
      ? `
    <plugins>
      <simpleAuthenticationPlugin anonymousAccessAllowed="true">
        <users>
${users.map((user) => `          <authenticationUser username="${xmlAttribute(user.login)}" password="${xmlAttribute(user.passcode)}" groups="users"/>`).join('\n')}
        </users>
      </simpleAuthenticationPlugin>
    </plugins>`
      : '';
    await mkdir(this.confDir, { recursive: true });
    await mkdir(this.dataDir, { recursive: true });
    await writeFile(
      path.join(this.confDir, 'activemq.xml'),
      `<beans xmlns="http://www.springframework.org/schema/beans" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="connection-health-test" useJmx="false"
          persistent="false" useShutdownHook="false" dataDirectory="${this.dataDir}">${authentication}
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://${this.host}:${this.port}"/>
    </transportConnectors>
  </broker>
</beans>
`,
    );
    await writeFile(
      path.join(this.confDir, 'log4j.properties'),
      'log4j.rootLogger=WARN, out\nlog4j.appender.out=org.apache.log4j.ConsoleAppender\n' +
        'log4j.appender.out.layout=org.apache.log4j.PatternLayout\nlog4j.appender.out.layout.ConversionPattern=%d %-5p %c{1} - %m%n\n',
    );
  }

  private get confDir(): string {
    return path.join(this.dir, 'conf');
  }

  private get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  private get logFile(): string {
    return path.join(this.dir, 'activemq.log');
  }

  private get pidFile(): string {
    return path.join(this.dir, 'activemq.pid');
  }

  private readPid(): number | undefined {
    try {
      const pid = Number(readFileSync(this.pidFile, 'utf8'));
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private logTail(): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-15).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Synchronous, for process exit. */
  private destroyNow(): void {
    const pid = this.readPid();
    if (pid !== undefined) killNow([pid, ...childrenOf(pid)]);
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

function xmlAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
