/**
 * The issue's "Done when" run: an app (test/fixtures/secret-fault-run.app.ts) with a connection of every
 * kind, each configured with a planted secret, goes through a full fault run: RST, a blackhole, kills of
 * every server, and failed logins (wrong passwords from the start; passwords changed under live sessions).
 * Then every secret is looked for, in every form, in everything the app wrote: both loggers at every level,
 * every event, the health routes after each fault, the metrics, and the final snapshots and inspections.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { FaultRunConfig } from './fixtures/secret-fault-run.app.js';
import { ActiveMqServer } from './kit/activemq.server.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import type { DovecotServer } from './kit/dovecot.server.js';
import { MosquittoServer } from './kit/mosquitto.server.js';
import { NatsServer } from './kit/nats.server.js';
import { PLANTED_SECRETS, leakedForms } from './kit/planted-secrets.js';
import { PostgresServer } from './kit/postgres.server.js';
import type { RabbitMqServer } from './kit/rabbitmq.server.js';
import { sharedDovecot, sharedRabbitMq } from './kit/shared-servers.js';

const app = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'secret-fault-run.app.js');
const planted = (why: string) => PLANTED_SECRETS.find((entry) => entry.why === why)!.secret;

/** A hard secret per credential; the users differ per server so that each server knows one password. */
const secrets: FaultRunConfig['secrets'] = {
  pgUrl: planted('everything at once'),
  pgPassword: planted('a very long one'),
  pgWrong: planted('a single quote'),
  imapflow: planted('spaces'),
  nodeImap: planted('backslashes'),
  imapWrong: planted('an emoji'),
  activemq: planted('double quotes'),
  activemqWrong: planted('ä'),
  rabbitmq: planted('%'),
  rabbitmqWrong: planted('Chinese'),
  mqtt: planted('@'),
  mqttWrong: planted('='),
  nats: planted('/'),
  natsWrong: planted('+'),
  api: planted('a JWT-looking token'),
};
const run = `${process.pid}`;
const users: FaultRunConfig['users'] = {
  postgres: 'alice_pw',
  postgresUrl: 'alice_url',
  imapflow: `alice-flow-${run}`,
  nodeImap: `alice-node-${run}`,
  activemq: 'alice-amq',
  rabbitmq: `alice-rmq-${run}`,
  mqtt: `alice-mqtt-${run}`,
  nats: `alice-nats-${run}`,
};
/** Which user goes with which secret, for the base64 blobs (SASL PLAIN, Basic) that hold both. */
const userOf: Record<keyof FaultRunConfig['secrets'], string> = {
  pgUrl: users.postgresUrl,
  pgPassword: users.postgres,
  pgWrong: users.postgres,
  imapflow: users.imapflow,
  nodeImap: users.nodeImap,
  imapWrong: users.imapflow,
  activemq: users.activemq,
  activemqWrong: users.activemq,
  rabbitmq: users.rabbitmq,
  rabbitmqWrong: users.rabbitmq,
  mqtt: users.mqtt,
  mqttWrong: users.mqtt,
  nats: users.nats,
  natsWrong: users.nats,
  api: 'alice',
};
/** Every form a scrubber must know: as written, and as each source encodes it (see secret-corpus.ts). */
const EVERY_FORM = '{{secret}} {{secret|url}} {{secret|userinfo}} {{secret|imap}} {{secret|json}} {{secret|inspect}} {{secret|imap|inspect}} {{secret|base64}} {{sasl}} {{basic}} {{xoauth2}}';

const GOOD = ['pg-url', 'pg-password', 'imapflow', 'node-imap', 'activemq', 'rabbitmq', 'amqp', 'mqtt', 'nats', 'tcp', 'api'];
const WRONG = ['pg-wrong', 'imap-wrong', 'activemq-wrong', 'rabbitmq-wrong', 'amqp-wrong', 'mqtt-wrong', 'nats-wrong'];
const SERVING = new Set(['up', 'degraded']);

/** The app as a child process: its output, and the state of each connection from the events it prints. */
class FaultRunApp {
  output = '';
  readonly states = new Map<string, string>();
  readonly visits = new Map<string, Map<string, number>>();
  private readonly lines: string[] = [];
  private readonly exited: Promise<number | null>;

  constructor(private readonly child: ChildProcess) {
    const collect = (stream: NodeJS.ReadableStream) => createInterface({ input: stream }).on('line', (line) => this.take(line));
    collect(child.stdout!);
    collect(child.stderr!);
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  static start(config: FaultRunConfig): FaultRunApp {
    const child = spawn(process.execPath, [app], { env: { ...process.env, CH_FAULT_RUN: JSON.stringify(config) }, stdio: ['pipe', 'pipe', 'pipe'] });
    return new FaultRunApp(child);
  }

  /** How often `name` entered `state` since the start. */
  count(name: string, state: string): number {
    return this.visits.get(name)?.get(state) ?? 0;
  }

  async waitUntil(what: string, condition: () => boolean, withinMs: number): Promise<void> {
    const deadline = Date.now() + withinMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`${what} within ${withinMs} ms; states: ${JSON.stringify(Object.fromEntries(this.states))}\n${this.output.slice(-4_000)}`);
      await sleep(50);
    }
  }

  /** Sends a command and waits for the app to say it is done. */
  async command(command: 'probe' | 'dump'): Promise<void> {
    const answer = command === 'dump' ? 'closed: yes' : `done: ${command}`;
    const seen = this.lines.length;
    this.child.stdin!.write(`${command}\n`);
    await this.waitUntil(`the app answered ${command}`, () => this.lines.slice(seen).includes(answer), 30_000);
  }

  async exit(): Promise<number | null> {
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  private take(line: string): void {
    this.output += `${line}\n`;
    this.lines.push(line);
    const event = /^event ([\w-]+): (\{.*\})$/.exec(line);
    if (!event) return;
    const parsed = JSON.parse(event[2]!) as { type: string; to?: string };
    if (parsed.type !== 'state' || !parsed.to) return;
    this.states.set(event[1]!, parsed.to);
    const visits = this.visits.get(event[1]!) ?? new Map<string, number>();
    visits.set(parsed.to, (visits.get(parsed.to) ?? 0) + 1);
    this.visits.set(event[1]!, visits);
  }
}

describe('a full fault run of every kind leaves no planted secret in any output', { timeout: 400_000 }, () => {
  let postgres: PostgresServer;
  let dovecot: DovecotServer;
  let activemq: ActiveMqServer;
  let rabbitmq: RabbitMqServer;
  let mosquitto: MosquittoServer;
  let nats: NatsServer;
  let api: http.Server;
  let apiStatus = 200;
  const proxies: ChaosProxy[] = [];
  let child: FaultRunApp | undefined;

  before(async () => {
    [postgres, dovecot, activemq, rabbitmq, mosquitto, nats] = await Promise.all([
      PostgresServer.start({ passwords: true }),
      sharedDovecot(),
      ActiveMqServer.start({ users: [{ login: users.activemq, passcode: secrets.activemq }] }),
      sharedRabbitMq(),
      MosquittoServer.start({ user: { username: users.mqtt, password: secrets.mqtt } }),
      NatsServer.start({ auth: { users: { [users.nats]: secrets.nats } } }),
    ]);
    await postgres.createRole(users.postgres, secrets.pgPassword);
    await postgres.createRole(users.postgresUrl, secrets.pgUrl);
    await dovecot.addUser(users.imapflow, secrets.imapflow);
    await dovecot.addUser(users.nodeImap, secrets.nodeImap);
    await rabbitmq.addUser(users.rabbitmq, secrets.rabbitmq);
    api = http.createServer((request, response) => {
      const authorized = request.headers.authorization === `Bearer ${secrets.api}`;
      response.writeHead(authorized ? apiStatus : 401, { 'content-type': 'application/json' });
      response.end(apiStatus === 200 && authorized ? '{"ok":true}' : '{"error":"invalid_token"}');
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  });

  after(async () => {
    await child?.exit();
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await new Promise((resolve) => api?.close(resolve));
    await Promise.all([postgres?.stop(), activemq?.stop(), mosquitto?.stop(), nats?.stop()]);
    await rabbitmq?.ctl(['delete_user', users.rabbitmq]).catch(() => undefined);
    if (dovecot && !dovecot.isRunning()) await dovecot.startAgain();
  });

  it('through RST, blackhole, kills and failed logins', async () => {
    const through = async (host: string, port: number) => {
      const proxy = await ChaosProxy.start(host, port);
      proxies.push(proxy);
      return { host: proxy.host, port: proxy.port };
    };
    const config: FaultRunConfig = {
      postgres: await through(postgres.host, postgres.port),
      imap: await through(dovecot.host, dovecot.port),
      activemq: await through(activemq.host, activemq.port),
      rabbitmq: await through(rabbitmq.host, rabbitmq.port),
      amqp: await through(rabbitmq.host, rabbitmq.amqpPort),
      mqtt: await through(mosquitto.host, mosquitto.port),
      nats: await through(nats.host, nats.port),
      api: await through('127.0.0.1', (api.address() as AddressInfo).port),
      users,
      secrets,
    };
    child = FaultRunApp.start(config);
    const allUp = (what: string) => child!.waitUntil(`${what}: ${GOOD.join(', ')} up`, () => GOOD.every((name) => SERVING.has(child!.states.get(name) ?? '')), 60_000);
    const downs = () => Object.fromEntries(GOOD.map((name) => [name, child!.count(name, 'down')]));
    const wentDown = (before: Record<string, number>, names: string[], what: string) =>
      child!.waitUntil(`${what}: ${names.join(', ')} down`, () => names.every((name) => child!.count(name, 'down') > before[name]!), 30_000);

    await allUp('start');
    await child.command('probe');

    // RST of every session the proxies carry.
    let before = downs();
    for (const proxy of proxies) proxy.reset();
    await wentDown(before, ['pg-url', 'pg-password', 'imapflow', 'node-imap', 'activemq', 'rabbitmq', 'amqp', 'mqtt', 'nats'], 'RST');
    await child.command('probe');
    await allUp('after RST');

    // A silent partition: the heartbeat deadlines must notice.
    before = downs();
    for (const proxy of proxies) proxy.blackhole();
    await wentDown(before, ['pg-url', 'pg-password', 'imapflow', 'node-imap', 'activemq', 'rabbitmq', 'amqp', 'mqtt', 'nats', 'api'], 'blackhole');
    await child.command('probe');
    for (const proxy of proxies) proxy.pass();
    await allUp('after the blackhole');

    // Every server killed (RabbitMQ, shared and slow to boot, closes every connection instead).
    before = downs();
    await Promise.all([
      postgres.kill(),
      dovecot.kill(users.imapflow),
      dovecot.kill(users.nodeImap),
      activemq.kill(),
      rabbitmq.closeAllConnections('fault run'),
      mosquitto.kill(),
      nats.kill(),
    ]);
    await wentDown(before, ['pg-url', 'pg-password', 'tcp', 'imapflow', 'node-imap', 'activemq', 'rabbitmq', 'amqp', 'mqtt', 'nats'], 'kill');
    await child.command('probe');
    await Promise.all([postgres.startAgain(), activemq.startAgain(), mosquitto.startAgain(), nats.startAgain()]);
    await allUp('after the kills');

    // Failed logins under live sessions: passwords changed, sessions ended, reconnects refused.
    before = downs();
    await postgres.query(`ALTER ROLE ${users.postgres} PASSWORD 'changed-by-the-fault-run'`);
    await postgres.terminateBackends();
    await rabbitmq.ctl(['change_password', users.rabbitmq, 'changed-by-the-fault-run']);
    await rabbitmq.closeAllConnections('password changed');
    // mosquitto 2.0 reads its password file at start: the broker on the same port now takes another password.
    await mosquitto.stop();
    mosquitto = await MosquittoServer.start({ port: mosquitto.port, user: { username: users.mqtt, password: 'changed-by-the-fault-run' } });
    // nats-server on the same port with another password: the live connection ends with the kill, the new ones are refused.
    await nats.stop();
    nats = await NatsServer.start({ port: nats.port, auth: { users: { [users.nats]: 'changed-by-the-fault-run' } } });
    apiStatus = 401;
    const refused = ['pg-password', 'rabbitmq', 'amqp', 'mqtt', 'nats', 'api'];
    const attempts = Object.fromEntries(refused.map((name) => [name, child!.count(name, 'reconnecting')]));
    await wentDown(before, refused, 'failed login');
    await child.waitUntil('two refused reconnects each', () => refused.every((name) => child!.count(name, 'reconnecting') >= attempts[name]! + 2), 30_000);
    await child.command('probe');

    await child.command('dump');
    assert.equal(await child.exit(), 0, child.output.slice(-3_000));

    // What proves the run happened as planned, so that finding nothing means something.
    for (const name of GOOD) assert.ok(child.count(name, 'up') >= 2, `${name} came back up (${child.count(name, 'up')} times)`);
    for (const name of WRONG) assert.equal(child.count(name, 'up'), 0, `${name} never logged in`);
    assert.match(child.output, /password authentication failed for user/);
    assert.match(child.output, /AUTHORIZATION_VIOLATION/, 'the NATS server refused a login');
    assert.match(child.output, /"level":"warn"/, 'the JSON logger wrote');
    assert.match(child.output, / WARN \[ConnectionHealth\]/, 'the text logger wrote');
    assert.ok((child.output.match(/^body \/health 503: /gm)?.length ?? 0) >= 4, 'health bodies were printed during the faults');

    const leaks = Object.entries(secrets).flatMap(([credential, secret]) => {
      const found = leakedForms(child!.output, EVERY_FORM, { user: userOf[credential as keyof typeof secrets], secret });
      if (!found.length) return [];
      const at = child!.output.indexOf(secret);
      return [`${credential}: ${found.join(', ')}${at >= 0 ? `\n  ...${child!.output.slice(Math.max(0, at - 300), at + 80)}...` : ''}`];
    });
    assert.deepEqual(leaks, []);
  });
});
