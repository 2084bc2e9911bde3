import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DaemonServer, type DaemonLocation, type DaemonStartOptions } from './daemon.server.js';
import { run } from './process.util.js';

export interface MosquittoStartOptions extends DaemonStartOptions {
  /**
   * One user allowed to log in (a mosquitto_passwd file); anonymous clients are then refused (CONNACK 5,
   * "not authorized"). Default: none, anyone may connect without a username.
   */
  user?: { username: string; password: string };
  /**
   * Keep sessions (subscriptions and queued QoS 1/2 messages of clients that connect with clean: false) in
   * mosquitto.db across a restart. Saved after every change, so they also survive kill -9. Default: false,
   * a restarted broker is empty.
   */
  persistence?: boolean;
  /**
   * What clients may do, through the broker's dynamic-security plugin. Not an acl_file: mosquitto 2.0 grants
   * every SUBSCRIBE whatever its acl_file says, and only filters what it delivers (measured). Default: none,
   * everything allowed.
   */
  access?: MosquittoAccess;
}

export interface MosquittoAccess {
  /**
   * The only topic filters a SUBSCRIBE is granted; any other gets a failing SUBACK (0x80 for MQTT 3.1.1, 0x87
   * not authorized for MQTT 5) until allowAllSubscriptions(). Default: every filter granted.
   */
  subscribeOnly?: readonly string[];
  /** Topic filters no client may PUBLISH to (MQTT 5: PUBACK 0x87 not authorized; 3.1.1: dropped silently). */
  refusePublish?: readonly string[];
}

/** Everything another process needs to reach, kick, kill and start again a running broker. */
export interface MosquittoLocation extends DaemonLocation {
  /** Also in the temporary folder: the password file, dynamic-security.json and mosquitto.db. */
  user?: { username: string; password: string };
}

/** CONNACK return codes of MQTT 3.1.1 (section 3.2.2.3). */
export const CONNACK_ACCEPTED = 0;
export const CONNACK_NOT_AUTHORIZED = 5;

/**
 * A throwaway mosquitto 2.0 broker run as a plain background process, for end-to-end tests. Server-side
 * faults: kick() (session takeover: a second CONNECT with the same client id makes the broker close the first
 * connection with a FIN, MQTT 5 clients included: mosquitto 2.0.11 sends them no DISCONNECT, measured),
 * disconnectByAdministrativeAction() (MQTT 5 clients get DISCONNECT 0x98 first), kill() (SIGKILL: a FIN) and
 * pause() (SIGSTOP: silence). The broker daemonizes and is found through its pid file, so any process holding
 * the location (see attach) can kick, kill and start it again.
 */
export class MosquittoServer extends DaemonServer<MosquittoLocation> {
  readonly user: { username: string; password: string } | undefined;

  private constructor(location: MosquittoLocation, owned: boolean) {
    super(location, owned, { name: 'mosquitto', stem: 'mosquitto' });
    this.user = location.user;
  }

  /** Writes a configuration and starts the broker (a few ms); returns once it answers an MQTT CONNECT. */
  static async start(options: MosquittoStartOptions = {}): Promise<MosquittoServer> {
    const server = new MosquittoServer({ ...(await DaemonServer.place('mosquitto', options)), user: options.user }, true);
    return server.launch(() => server.writeConfig(options.persistence ?? false, options.access));
  }

  /**
   * A handle on a broker another process started (the test runner, say). Everything but stop() works on it;
   * stop() does nothing, because the broker belongs to the process that started it.
   */
  static attach(location: MosquittoLocation): MosquittoServer {
    return new MosquittoServer(location, false);
  }

  get location(): MosquittoLocation {
    return { host: this.host, port: this.port, dir: this.dir, netns: this.netns, user: this.user };
  }

  /** `mqtt://host:port`, as MQTT.js takes it (the user, if any, goes in the options, not the url). */
  get url(): string {
    return `mqtt://${this.host}:${this.port}`;
  }

  /**
   * The client ids connected now, as the broker's log of its current run tells (connect and disconnect
   * lines; mosquitto 2.0 has no command to list clients), the kit's own probes excluded.
   */
  connectedClients(): string[] {
    const log = this.log();
    const current = log.slice(log.lastIndexOf(' running\n') + 1);
    const connected = new Set<string>();
    for (const line of current.split('\n')) {
      const joined = / New client connected from \S+ as (\S+) \(/.exec(line);
      if (joined) connected.add(joined[1]!);
      // "Client X disconnected.", "Client X closed its connection.", "Client X has exceeded timeout, disconnecting.",
      // "Socket error on client X, disconnecting.", "Client X already connected, closing old connection."
      const left = / Client (\S+) (?:disconnected|closed its connection|has exceeded timeout)|Socket error on client (\S+),/.exec(line);
      if (left) connected.delete((left[1] ?? left[2])!.replace(/\.$/, ''));
    }
    return [...connected].filter((id) => !id.startsWith(KIT_ID_PREFIX));
  }

  /**
   * Grants every SUBSCRIBE from now on (a broker started with `access.subscribeOnly`), through the plugin's
   * control topic. The clients stay connected: the plugin disconnects every client of a role or group it
   * changes, but not on a change of its default access. Resolves once the broker applied it.
   */
  async allowAllSubscriptions(): Promise<void> {
    await this.control({ command: 'setDefaultACLAccess', acls: [{ acltype: 'subscribe', allow: true }] });
  }

  /**
   * Disconnects every client (a broker started with `access`) by an administrative action: the plugin drops
   * the clients of a role it changes, and every client of a test is in the anonymous role. MQTT 5 clients
   * first get DISCONNECT with reason 0x98, administrative action (session takeover, kick(), sends none in
   * mosquitto 2.0.11: measured); 3.1.1 clients only the FIN. Resolves once the broker logged `clientIds` gone.
   */
  async disconnectByAdministrativeAction(clientIds: readonly string[]): Promise<void> {
    const kicked = (id: string) => this.log().includes(`Client ${id} been disconnected by administrative action`);
    // Any change of the role does: an ACL on a topic of its own, new at every call.
    await this.control({ command: 'addRoleACL', rolename: ANONYMOUS_ROLE, acltype: 'subscribePattern', topic: `${KIT_ID_PREFIX}kick/${Math.random().toString(36).slice(2)}`, allow: true }, false);
    const deadline = Date.now() + 5_000;
    while (!clientIds.every(kicked)) {
      if (Date.now() > deadline) throw new Error(`mosquitto did not disconnect ${clientIds.filter((id) => !kicked(id)).join(', ')}`);
      await sleep(10);
    }
  }

  /**
   * One command to the dynamic-security plugin. Acknowledged: the plugin handles a $CONTROL message before the
   * broker sends its PUBACK. Not (QoS 0): for a command that disconnects the kit's own connection too.
   */
  private async control(command: Record<string, unknown>, acknowledged = true): Promise<void> {
    const socket = net.connect({ host: this.host, port: this.port });
    socket.on('error', () => undefined);
    try {
      await once(socket, 'connect');
      let received = Buffer.alloc(0);
      const arrived = (length: number) =>
        new Promise<void>((resolve, reject) => {
          const onData = (chunk: Buffer) => {
            received = Buffer.concat([received, chunk]);
            check();
          };
          const onClose = () => reject(new Error(`mosquitto closed the kit's control connection: ${received.toString('hex')}`));
          const check = () => {
            if (received.length < length) return;
            socket.removeListener('data', onData);
            socket.removeListener('close', onClose);
            resolve();
          };
          socket.on('data', onData);
          socket.once('close', onClose);
          check();
        });
      socket.write(connectPacket(`${KIT_ID_PREFIX}${process.pid}-control-${Math.random().toString(36).slice(2)}`, true));
      await arrived(4);
      socket.write(publishPacket('$CONTROL/dynamic-security/v1', JSON.stringify({ commands: [command] }), acknowledged ? 1 : undefined));
      if (!acknowledged) return;
      await arrived(8);
      if (received[3] !== CONNACK_ACCEPTED || received[4] !== 0x40) throw new Error(`mosquitto did not take the control command: ${received.toString('hex')}`);
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.end(DISCONNECT);
      await Promise.race([closed, sleep(1_000)]);
    } finally {
      socket.destroy();
    }
  }

  /**
   * The server-side kick of mosquitto 2.0, which has no admin command to close a client (the dynamic-security
   * plugin's disableClient needs every client to log in through it): a session takeover. The kit connects
   * with the same client id, and the broker closes the older connection with a FIN (mosquitto 2.0.11 sends no
   * DISCONNECT 0x8E even to an MQTT 5 client, measured: disconnectByAdministrativeAction() gives one a
   * DISCONNECT). The kit's CONNECT is MQTT
   * 3.1.1 with cleanSession 0, so a persistent session of the victim keeps its subscriptions and queued
   * messages (a clean one is discarded anyway), and it sends DISCONNECT at once, before any queued message is
   * delivered to it. Resolves once the broker accepted the takeover and closed the kit's connection.
   */
  async kick(clientId: string): Promise<void> {
    const code = await this.connectOnce({ clientId, clean: false });
    if (code !== CONNACK_ACCEPTED) throw new Error(`mosquitto refused the kick of ${clientId}: CONNACK ${code}`);
  }

  /** kick() of every client connected now (connectedClients()); returns their ids. */
  async kickAll(): Promise<string[]> {
    const ids = this.connectedClients();
    await Promise.all(ids.map((id) => this.kick(id)));
    return ids;
  }

  /**
   * One MQTT 3.1.1 CONNECT on a short-lived raw connection, DISCONNECT right after the CONNACK; resolves to the
   * CONNACK return code once the broker closed the connection (0 accepted, 5 not authorized). Uses the broker's user unless `username` is given
   * (null: none). No client library, so the kit does not depend on the one under test.
   */
  async connectOnce(options: { clientId?: string; clean?: boolean; username?: string | null; password?: string } = {}): Promise<number> {
    const username = options.username === undefined ? this.user?.username : (options.username ?? undefined);
    const password = options.username === undefined ? this.user?.password : options.password;
    const socket = net.connect({ host: this.host, port: this.port });
    socket.on('error', () => undefined); // the reads below end with 'close'
    try {
      await once(socket, 'connect').catch((error: Error) => {
        throw new NotReadyError(error.message);
      });
      socket.write(connectPacket(options.clientId ?? `${KIT_ID_PREFIX}${process.pid}-${Math.random().toString(36).slice(2)}`, options.clean ?? true, username, password));
      const code = await readConnack(socket);
      // The broker closes the connection once it handled the DISCONNECT (and logged it: connectedClients()).
      // Not events.once(), which rejects on the ECONNRESET of a broker that refused the login and closed first.
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.end(DISCONNECT);
      await Promise.race([closed, sleep(1_000)]);
      return code;
    } finally {
      socket.destroy();
    }
  }

  private get passwordFile(): string {
    return path.join(this.dir, 'passwords');
  }

  private async writeConfig(persistence: boolean, access: MosquittoAccess | undefined): Promise<void> {
    const dynamicSecurityFile = path.join(this.dir, 'dynamic-security.json');
    if (access) {
      const acls = [
        ...(access.subscribeOnly ?? []).map((topic) => ({ acltype: 'subscribePattern', topic, priority: 0, allow: true })),
        ...(access.refusePublish ?? []).map((topic) => ({ acltype: 'publishClientSend', topic, priority: 0, allow: false })),
        // The kit's control() sends its commands as an anonymous client, like every client of a test.
        { acltype: 'publishClientSend', topic: '$CONTROL/dynamic-security/#', priority: 1, allow: true },
      ];
      const config = {
        // What no role ACL matches; allowAllSubscriptions() turns subscribe on.
        defaultACLAccess: { publishClientSend: true, publishClientReceive: true, subscribe: access.subscribeOnly === undefined, unsubscribe: true },
        clients: [],
        groups: [{ groupname: ANONYMOUS_ROLE, roles: [{ rolename: ANONYMOUS_ROLE }] }],
        roles: [{ rolename: ANONYMOUS_ROLE, acls }],
        anonymousGroup: ANONYMOUS_ROLE,
      };
      await writeFile(dynamicSecurityFile, JSON.stringify(config), { mode: 0o600 });
    }
    if (this.user) {
      await writeFile(this.passwordFile, '', { mode: 0o600 });
      await run('mosquitto_passwd', ['-b', this.passwordFile, this.user.username, this.user.password]);
    }
    const lines = [
      // Started as root, mosquitto 2.0 drops to the user `mosquitto`, which cannot read this 0700 folder.
      'user root',
      `listener ${this.port} ${this.host}`,
      `allow_anonymous ${this.user ? 'false' : 'true'}`,
      ...(this.user ? [`password_file ${this.passwordFile}`] : []),
      ...(access ? [`plugin ${DYNAMIC_SECURITY_PLUGIN}`, `plugin_opt_config_file ${dynamicSecurityFile}`] : []),
      `pid_file ${this.pidFile}`,
      `log_dest file ${this.logFile}`,
      // Connect, disconnect and takeover lines (connectedClients() reads them), and why a client was dropped.
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'connection_messages true',
      'log_timestamp_format %Y-%m-%dT%H:%M:%S',
      ...(persistence
        ? [
            'persistence true',
            `persistence_location ${this.dir}/`,
            // Saved after every change rather than every 30 min, so sessions also survive kill -9.
            'autosave_interval 1',
            'autosave_on_changes true',
          ]
        : ['persistence false']),
    ];
    await writeFile(this.configFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  }

  /** `-d` makes mosquitto fork into the background. */
  protected daemonCommand(): string[] {
    return ['mosquitto', '-c', this.configFile, '-d'];
  }

  protected async ready(): Promise<boolean> {
    let code: number;
    try {
      code = await this.connectOnce();
    } catch (error) {
      if (error instanceof NotReadyError) return false;
      throw error;
    }
    if (code !== CONNACK_ACCEPTED) throw new Error(`mosquitto at ${this.host}:${this.port} refused the kit's CONNECT: CONNACK ${code}`);
    return true;
  }
}

/** The client ids of the kit's own connections start with this. */
const KIT_ID_PREFIX = 'ch-kit-';
const DISCONNECT = Buffer.from([0xe0, 0x00]);
/** Debian's mosquitto package ships it, under the architecture's library folder. */
const DYNAMIC_SECURITY_PLUGIN =
  ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib'].map((dir) => path.join(dir, 'mosquitto_dynamic_security.so')).find((file) => existsSync(file)) ??
  'mosquitto_dynamic_security.so';
/** The dynamic-security role (and group) of anonymous clients, which carries the access rules. */
const ANONYMOUS_ROLE = 'anonymous';

/** The broker is not listening yet, or closed the connection before a CONNACK. */
class NotReadyError extends Error {}

function utf8Field(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** The remaining-length field: 7 bits a byte, the high bit says another byte follows. */
function remainingLength(length: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    bytes.push(byte);
  } while (length > 0);
  return Buffer.from(bytes);
}

/** An MQTT 3.1.1 CONNECT (section 3.1), keepalive 0: the kit's connection lives a few ms. */
function connectPacket(clientId: string, clean: boolean, username?: string, password?: string): Buffer {
  const flags = (clean ? 0x02 : 0) | (username !== undefined ? 0x80 : 0) | (password !== undefined ? 0x40 : 0);
  const body = Buffer.concat([
    utf8Field('MQTT'),
    Buffer.from([0x04, flags, 0x00, 0x00]),
    utf8Field(clientId),
    ...(username !== undefined ? [utf8Field(username)] : []),
    ...(password !== undefined ? [utf8Field(password)] : []),
  ]);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}

/** An MQTT 3.1.1 PUBLISH (section 3.3): at QoS 1 with packet id `id`, else at QoS 0. */
function publishPacket(topic: string, payload: string, id?: number): Buffer {
  const packetId = Buffer.alloc(id === undefined ? 0 : 2);
  if (id !== undefined) packetId.writeUInt16BE(id);
  const body = Buffer.concat([utf8Field(topic), packetId, Buffer.from(payload, 'utf8')]);
  return Buffer.concat([Buffer.from([id === undefined ? 0x30 : 0x32]), remainingLength(body.length), body]);
}

/** Reads the 4-byte CONNACK; its return code. A refused or closed connection is NotReadyError. */
function readConnack(socket: net.Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (buffer.length < 4) return;
      if (buffer[0] !== 0x20 || buffer[1] !== 0x02) reject(new Error(`not a CONNACK: ${buffer.subarray(0, 4).toString('hex')}`));
      else resolve(buffer[3]!);
    });
    socket.on('close', () => reject(new NotReadyError('closed before CONNACK')));
  });
}
