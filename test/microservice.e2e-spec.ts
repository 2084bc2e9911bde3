/**
 * The microservice kind end to end: a real Nest app whose ClientsModule registers one ClientProxy per
 * transport (RMQ, Redis, MQTT, NATS), each through a chaos proxy of its own in front of the kit's real server, and
 * declares each as `{ kind: 'microservice', client: '<its token>' }`. Each fault (kill -9, RST, silent
 * blackhole, slow, server-side kick) must read every proxy down within the bound and up again once lifted,
 * and an emit() through the proxy after recovery must reach a real consumer (a raw subscriber of the
 * server). Then: healthy beats with no transition, the proxy left to the app at close, bad configs, the
 * decorator, and a NATS connection nats.js gave up on, replaced by the package's connect().
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { EventEmitter } from 'node:events';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import { ClientProxy, ClientProxyFactory, ClientRMQ, ClientsModule, Transport, type ClientProviderOptions } from '@nestjs/microservices';
import { firstValueFrom, timeout } from 'rxjs';
import { MonitorConnection } from '../lib/index.js';
import type { ConnectionDefinition } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import type { RabbitMqServer } from './kit/rabbitmq.server.js';
import type { RedisServer } from './kit/redis.server.js';
import { addressOf, PROXY_TRANSPORT_NAMES, proxyTransportServers, rawSubscriber, serverOf, type ProxyTransportName, type ProxyTransportServers } from './kit/proxy-transport-servers.js';
import { StateLog, waitUntil } from './kit/state-log.js';
import { TestApp } from './kit/test-app.js';

// Detection bound under test: intervalMs + timeoutMs (failureThreshold 1), plus a margin for a busy 2-core machine.
const INTERVAL_MS = 1_500;
const TIMEOUT_MS = 600;
const BOUND_MS = INTERVAL_MS + TIMEOUT_MS;
const MARGIN_MS = 2_000;
/** Up again, and an emit() delivered, within this once the fault is lifted. */
const RECOVER_MS = 20_000;
const SHUTDOWN_MS = 1_000;
const SLOW_MS = TIMEOUT_MS + 300;
const timing = {
  heartbeat: { intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, connectTimeoutMs: 2_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 1_000, maxAttempts: Infinity },
};
const now = () => performance.timeOrigin + performance.now();
const unique = () => randomBytes(4).toString('hex');

type Name = ProxyTransportName;
const NAMES = PROXY_TRANSPORT_NAMES;
const TOKENS: Record<Name, string> = { rmq: 'RMQ_CLIENT', redis: 'REDIS_CLIENT', mqtt: 'MQTT_CLIENT', nats: 'NATS_CLIENT' };
const microservice = (name: string, client: unknown) => ({ name, kind: 'microservice', client, ...timing }) as unknown as ConnectionDefinition;
type Servers = ProxyTransportServers;

/** The four servers, each behind a chaos proxy of its own, and what the app's ClientProxies are told. */
class Transports {
  readonly proxies = new Map<Name, ChaosProxy>();
  readonly id = unique();
  /** Redis records unhandled rejections of ClientRedis (its UNSUBSCRIBE has no catch): kept, not fatal. */
  readonly unhandled: string[] = [];

  constructor(readonly servers: Servers) {}

  static async start(servers: Servers): Promise<Transports> {
    const transports = new Transports(servers);
    for (const name of NAMES) transports.proxies.set(name, await ChaosProxy.start(...addressOf(servers, name)));
    return transports;
  }

  get queue(): string {
    return `ms-e2e.${this.id}`;
  }
  get rmqName(): string {
    return `ms-rmq-${this.id}`;
  }
  get redisName(): string {
    return `ms-redis-${this.id}`;
  }
  get mqttId(): string {
    return `ms-mqtt-${this.id}`;
  }
  get natsName(): string {
    return `ms-nats-${this.id}`;
  }
  pattern(name: Name): string {
    return name === 'mqtt' ? `ms-e2e/${this.id}` : `ms-e2e.${this.id}`;
  }

  /** ClientsModule.register() entries, as a fast app sets them: short heartbeats and handshakes, the libraries' own reconnects. */
  clientOptions(name: Name, token = TOKENS[name], extra: Record<string, unknown> = {}): ClientProviderOptions {
    const proxy = this.proxies.get(name)!;
    switch (name) {
      case 'rmq':
        return {
          name: token,
          transport: Transport.RMQ,
          options: {
            urls: [`amqp://guest:guest@${proxy.host}:${proxy.port}`],
            queue: this.queue,
            queueOptions: { durable: false },
            socketOptions: { heartbeatIntervalInSeconds: 1, reconnectTimeInSeconds: 1, connectionOptions: { timeout: 2_000, clientProperties: { connection_name: this.rmqName } } },
          },
        } as ClientProviderOptions;
      case 'redis':
        return { name: token, transport: Transport.REDIS, options: { host: proxy.host, port: proxy.port, connectionName: this.redisName, connectTimeout: 2_000 } } as ClientProviderOptions;
      case 'mqtt':
        return { name: token, transport: Transport.MQTT, options: { url: `mqtt://${proxy.host}:${proxy.port}`, clientId: this.mqttId, connectTimeout: 2_000 } } as ClientProviderOptions;
      case 'nats':
        // nats.js's own reconnect as Nest leaves it (10 attempts, 2 s apart); `extra` shortens it for the give-up test.
        return { name: token, transport: Transport.NATS, options: { servers: [`nats://${proxy.host}:${proxy.port}`], name: this.natsName, timeout: 2_000, ...extra } } as ClientProviderOptions;
    }
  }

  async close(): Promise<void> {
    for (const proxy of this.proxies.values()) await proxy.close();
  }
}

/** Emits through the app's ClientProxy until a raw subscriber of the server got it (emit() fails at once while its connection is lost). */
async function emitUntilReceived(servers: Servers, transports: Transports, name: Name, client: ClientProxy, what: string): Promise<void> {
  const body = `${what} ${unique()}`;
  let subscriber: Awaited<ReturnType<typeof rawSubscriber>> | undefined;
  try {
    await waitUntil(
      async () => {
        subscriber ??= await rawSubscriber(servers, name, { queue: transports.queue, pattern: transports.pattern(name) }).catch(() => undefined);
        if (!subscriber) return false;
        await firstValueFrom(client.emit(transports.pattern(name), body).pipe(timeout(2_000)), { defaultValue: undefined }).catch(() => undefined);
        await sleep(300);
        return subscriber.received.some((payload) => payload.includes(body));
      },
      RECOVER_MS,
      `${name}: an emit() through the ClientProxy after recovery reaches a raw subscriber (${what})`,
    );
  } finally {
    await subscriber?.close();
  }
}

/** The broker's AMQP connections whose connection_name is `name`, closed by `rabbitmqctl close_connection` (320 CONNECTION_FORCED, then FIN). */
async function kickRabbit(rabbit: RabbitMqServer, name: string): Promise<number> {
  const table = await rabbit.ctl(['list_connections', '--no-table-headers', 'pid', 'client_properties']);
  const pids = table
    .split('\n')
    .filter((line) => line.includes(`{"connection_name","${name}"}`))
    .map((line) => line.split('\t')[0]!.trim());
  for (const pid of pids) await rabbit.ctl(['close_connection', pid, 'e2e kick']);
  return pids.length;
}

/** CLIENT KILL of the Redis connections named `name` (ClientRedis' pub and sub both carry the connectionName). */
async function kickRedis(redis: RedisServer, name: string): Promise<number> {
  let killed = 0;
  for (const client of (await redis.clients()).filter((c) => c.name === name)) killed += await redis.clientKill({ id: client.id! });
  return killed;
}

interface Fault {
  readonly title: string;
  /** No FIN, no RST: only the beat can tell, within the bound. */
  readonly silent: boolean;
  inject(ctx: FaultContext): Promise<void>;
  clear(ctx: FaultContext): Promise<void>;
}

interface FaultContext {
  servers: Servers;
  transports: Transports;
  names: readonly Name[];
}

const proxiesOf = ({ transports, names }: FaultContext) => names.map((n) => transports.proxies.get(n)!);

const FAULTS: readonly Fault[] = [
  {
    title: 'kill -9 of the server',
    silent: false,
    inject: async ({ servers, names }) => {
      await Promise.all(names.map((n) => serverOf(servers, n).kill()));
    },
    clear: async ({ servers, names }) => {
      await Promise.all(names.map((n) => serverOf(servers, n).startAgain()));
    },
  },
  {
    title: 'RST (chaos proxy reset)',
    silent: false,
    inject: async (ctx) => proxiesOf(ctx).forEach((p) => p.reset()),
    clear: async () => undefined,
  },
  {
    title: 'silent blackhole (chaos proxy swallows every byte)',
    silent: true,
    inject: async (ctx) => proxiesOf(ctx).forEach((p) => p.blackhole()),
    clear: async (ctx) => {
      // Held a while, so that the libraries' own timeouts and reconnects into the blackhole are lived through.
      await sleep(3_000);
      proxiesOf(ctx).forEach((p) => p.pass());
    },
  },
  {
    title: `slow (proxy latency ${SLOW_MS} ms each way, above the ${TIMEOUT_MS} ms deadline)`,
    silent: true,
    inject: async (ctx) => proxiesOf(ctx).forEach((p) => p.latency(SLOW_MS)),
    clear: async (ctx) => {
      await sleep(2 * INTERVAL_MS);
      proxiesOf(ctx).forEach((p) => p.pass());
    },
  },
  {
    title: 'server-side kick (rabbitmqctl close_connection, CLIENT KILL, MQTT session takeover, NATS authorization revoked by a reload)',
    silent: false,
    inject: async ({ servers, transports, names }) => {
      for (const name of names) {
        if (name === 'rmq') assert.ok((await kickRabbit(servers.rabbit, transports.rmqName)) >= 1, 'the RMQ connection kicked');
        if (name === 'redis') assert.ok((await kickRedis(servers.redis, transports.redisName)) >= 1, 'the Redis pair kicked');
        if (name === 'mqtt') await servers.mosquitto.kick(transports.mqttId);
        // The kit's nats-server has no users: the reload revokes everyone's login, which drops the proxy's connection.
        if (name === 'nats') assert.ok((await servers.nats.kick()) >= 1, 'the NATS connection kicked');
      }
    },
    clear: async () => undefined,
  },
];

/** Collects the failures of each proxy, so that one test reports all of them. */
async function each(names: readonly Name[], check: (name: Name) => Promise<void>): Promise<string[]> {
  const outcomes = await Promise.allSettled(names.map(check));
  return outcomes.flatMap((outcome, i) => (outcome.status === 'rejected' ? [`${names[i]}: ${(outcome.reason as Error).message}`] : []));
}

let servers: Servers;
before(async () => {
  servers = await proxyTransportServers();
});
after(async () => {
  for (const name of NAMES) {
    const server = servers && serverOf(servers, name);
    if (server && !server.isRunning()) await server.startAgain();
  }
});

/** ClientRedis rejects inside without a catch (facts: UNSUBSCRIBE at close, the pair's end): counted, so that the run goes on. */
const unhandled: string[] = [];
process.on('unhandledRejection', (reason) => unhandled.push(String((reason as Error)?.message ?? reason)));

describe("microservice kind: one app, ClientsModule with an RMQ, a Redis, an MQTT and a NATS ClientProxy, each read down on each fault and recovered", () => {
  let transports: Transports;
  let app: TestApp;
  let log: StateLog;
  const clientOf = (name: Name) => app.app.get<ClientProxy>(TOKENS[name]);

  before(async () => {
    transports = await Transports.start(servers);
    app = await TestApp.start({
      imports: [ClientsModule.register(NAMES.map((name) => transports.clientOptions(name)))],
      health: { shutdown: { timeoutMs: SHUTDOWN_MS }, connections: NAMES.map((name) => microservice(name, TOKENS[name])) },
    });
    log = new StateLog(app, NAMES);
    for (const name of NAMES) await app.waitFor(name, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
  });
  after(async () => {
    log?.stop();
    await app?.close();
    await transports?.close();
  });

  it('each proxy up, connected by the package (nothing else called connect()); the handle gives the ClientProxy; an emit() reaches a raw subscriber', async (t) => {
    for (const name of NAMES) {
      const client = clientOf(name);
      assert.equal(app.registry.get(name).client(), client, `${name}: the handle's client is the app's ClientProxy`);
      const snapshot = app.snapshot(name);
      assert.equal(snapshot.kind, 'microservice');
      const proxy = transports.proxies.get(name)!;
      assert.equal(snapshot.target, `${proxy.host}:${proxy.port}`, `${name}: target, without credentials`);
      t.diagnostic(`${name}: up, reason ${snapshot.reason}`);
      await emitUntilReceived(servers, transports, name, client, 'hello');
    }
  });

  it(`healthy for 12 intervals: a beat each interval, no transition`, async () => {
    const since = now();
    await sleep(12 * INTERVAL_MS);
    for (const name of NAMES) {
      assert.deepEqual(log.states(name, since), [], `${name}: no transition while healthy`);
      assert.ok(log.beats(name, since).length >= 10, `${name}: ${log.beats(name, since).length} beats in 12 intervals`);
    }
  });

  for (const fault of FAULTS) {
    it(fault.title, (t) => runFault(t, fault));
  }

  async function runFault(t: TestContext, fault: Fault): Promise<void> {
    for (const name of NAMES) await app.waitFor(name, (s) => s.state === 'up', RECOVER_MS);
    const ctx: FaultContext = { servers, transports, names: NAMES };
    const faultAt = now();
    await fault.inject(ctx);
    const injectMs = now() - faultAt;
    const downAt = new Map<Name, number>();
    const detected = await each(NAMES, async (name) => {
      const elapsed = await log.waitFor(name, 'down', faultAt, injectMs + BOUND_MS + MARGIN_MS + 5_000);
      const down = log.first(name, 'down', faultAt)!;
      downAt.set(name, down.at);
      t.diagnostic(`${fault.title} · ${name}: down after ${elapsed} ms (bound ${BOUND_MS} ms, fault injected in ${Math.round(injectMs)} ms): ${down.reason}`);
      assert.ok(elapsed <= injectMs + BOUND_MS + MARGIN_MS, `down after ${elapsed} ms, bound ${BOUND_MS} + margin ${MARGIN_MS} ms`);
      if (!fault.silent) assert.ok(elapsed <= injectMs + MARGIN_MS, `a loss the client reports itself is read at once, not at the next beat: ${elapsed} ms`);
    });
    if (fault.silent) assert.equal((await app.health()).status, 503);
    const clearedAt = now();
    await fault.clear(ctx);
    const recovered = await each(NAMES, async (name) => {
      const since = downAt.get(name) ?? faultAt;
      await log.waitFor(name, 'up', since, RECOVER_MS + Math.max(0, now() - since)).catch((error: Error) => {
        const { state, reason, lastError, reconnectAttempts } = app.snapshot(name);
        throw new Error(`${error.message}; ${JSON.stringify({ state, reason, lastError, reconnectAttempts })}`);
      });
      t.diagnostic(`${fault.title} · ${name}: up ${Math.round(log.first(name, 'up', since)!.at - clearedAt)} ms after the fault was lifted`);
      await emitUntilReceived(servers, transports, name, clientOf(name), `after ${fault.title}`);
    });
    assert.deepEqual([...detected, ...recovered], [], 'every proxy reads down within the bound, up again after, and an emit() reaches the server');
    assert.equal((await app.health()).status, 200);
    if (unhandled.length) t.diagnostic(`unhandled rejections so far (ClientRedis): ${unhandled.join(' | ')}`);
  }
});

/** Listener counts of every event of an emitter; of a nats.js connection (no emitter), its status iterators. */
function listeners(emitter: EventEmitter | undefined): Record<string, number> {
  const statusIterators = (emitter as { protocol?: { listeners?: unknown[] } } | undefined)?.protocol?.listeners;
  if (Array.isArray(statusIterators)) return { statusIterators: statusIterators.length };
  const counts: Record<string, number> = {};
  for (const event of emitter?.eventNames() ?? []) counts[String(event)] = emitter!.listenerCount(event);
  return counts;
}

/** What of a proxy the package may listen to: its manager and the manager's amqplib connection, its pub and sub clients, its MqttClient, its nats.js connection. */
function underlying(client: ClientProxy): EventEmitter[] {
  const unwrapped = client.unwrap<EventEmitter | EventEmitter[]>();
  if (Array.isArray(unwrapped)) return unwrapped;
  const model = (unwrapped as { connection?: EventEmitter & { connection?: EventEmitter } }).connection;
  return [unwrapped, ...(model ? [model, ...(model.connection ? [model.connection] : [])] : [])];
}

describe('microservice kind: app.close() leaves the proxy to the app', () => {
  it("a ClientProxy provided as a plain value (no ClientsModule shutdown hook): after app.close() it is still connected, emits, and holds no listener of the package's", async () => {
    const transports = await Transports.start(servers);
    const clients = new Map<Name, ClientProxy>(NAMES.map((name) => [name, ClientProxyFactory.create(transports.clientOptions(name) as never) as unknown as ClientProxy]));
    const before = new Map<Name, Array<Record<string, number>>>();
    try {
      // Connected by the app first, so that the listeners of Nest's own are counted before the package's.
      for (const [name, client] of clients) {
        await client.connect();
        before.set(name, underlying(client).map(listeners));
      }
      const app = await TestApp.start({
        providers: NAMES.map((name) => ({ provide: TOKENS[name], useValue: clients.get(name) })),
        health: { shutdown: { timeoutMs: SHUTDOWN_MS }, connections: NAMES.map((name) => microservice(name, TOKENS[name])) },
      });
      for (const name of NAMES) await app.waitFor(name, (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
      for (const [name, client] of clients) assert.notDeepEqual(underlying(client).map(listeners), before.get(name), `${name}: the package listens while it monitors`);
      await app.close();
      for (const [name, client] of clients) {
        assert.deepEqual(underlying(client).map(listeners), before.get(name), `${name}: no listener of the package's is left`);
        await emitUntilReceived(servers, transports, name, client, 'after app.close()');
      }
    } finally {
      for (const client of clients.values()) await client.close();
      await transports.close();
    }
  });
});

/** A port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A plain TCP forwarder on `port` to the real server, started once the test wants the server reachable. */
async function forwarder(port: number, targetHost: string, targetPort: number): Promise<net.Server> {
  const server = net.createServer((socket) => {
    const upstream = net.connect(targetPort, targetHost);
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

describe('microservice kind: the server unreachable at bootstrap', () => {
  it("each attempt calls connect() again (RMQ's plain { err, url } rejection made an Error with the library's reason), and the proxy comes up once the server is reachable", async (t) => {
    const transports = await Transports.start(servers);
    const ports = new Map<Name, number>();
    for (const name of NAMES) ports.set(name, await freePort());
    // The proxies point at ports nothing listens on yet.
    const unreachable = new Map<Name, ChaosProxy>(NAMES.map((name) => [name, { host: '127.0.0.1', port: ports.get(name)! } as ChaosProxy]));
    const options = NAMES.map((name) => {
      const real = transports.proxies.get(name)!;
      transports.proxies.set(name, unreachable.get(name)!);
      const entry = transports.clientOptions(name);
      transports.proxies.set(name, real);
      return entry;
    });
    const forwarders: net.Server[] = [];
    const app = await TestApp.start({
      imports: [ClientsModule.register(options)],
      health: { shutdown: { timeoutMs: SHUTDOWN_MS }, connections: NAMES.map((name) => microservice(name, TOKENS[name])) },
    });
    try {
      for (const name of NAMES) {
        const snapshot = await app.waitFor(name, (s) => s.reconnectAttempts >= 2 && s.lastError !== undefined, 20_000);
        t.diagnostic(`${name}, unreachable: ${snapshot.state}, ${snapshot.reconnectAttempts} attempts, last error: ${snapshot.lastError}`);
        // MQTT: the failed first connect() leaves the MqttClient retrying under the proxy (unwrap() returns it), so it
        // is watched, not connected again, and the mqtt kind gives the reason of its last dial.
        const reason = name === 'mqtt' ? /the MQTT connection closed: connect ECONNREFUSED/ : /ClientProxy's connect\(\) failed: .*(ECONNREFUSED|Connection is closed|Connection lost|connection refused)/;
        assert.match(snapshot.lastError!, reason, `${name}: the library's reason`);
        assert.doesNotMatch(snapshot.lastError!, /\[object Object\]|rejected without an error/);
      }
      for (const name of NAMES) forwarders.push(await forwarder(ports.get(name)!, ...addressOf(servers, name)));
      for (const name of NAMES) await app.waitFor(name, (s) => s.state === 'up' && s.lastBeatAt !== undefined, RECOVER_MS);
    } finally {
      await app.close();
      for (const server of forwarders) {
        server.close();
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      }
      await transports.close();
    }
  });
});

describe('microservice kind: bad configs refused at bootstrap', () => {
  const startWith = (client: unknown, extra: Partial<Parameters<typeof TestApp.start>[0]> = {}) =>
    TestApp.start({ ...extra, health: { connections: [microservice('bad', client)] } });

  it('not a ClientProxy', async () => {
    await assert.rejects(startWith({ connect: () => undefined }), /Connection "bad": option "client" is "\(not a ClientProxy\)"\. Pass a ClientProxy of @nestjs\/microservices/);
  });

  it('an unsupported transport (TCP, Kafka, gRPC, a custom ClientProxy): refused, naming its class and the transports supported', async () => {
    const tcp = ClientProxyFactory.create({ transport: Transport.TCP, options: { port: 1 } });
    await assert.rejects(startWith(tcp), /option "client" is "\(a ClientTCP\)"\. a ClientTCP cannot be proven by the package.*Supported: RMQ \(ClientRMQ\), REDIS \(ClientRedis\), MQTT \(ClientMqtt\), NATS \(ClientNats\)/);
    class OwnTransportClient extends ClientProxy {
      async connect() {}
      async close() {}
      unwrap<T>(): T {
        return undefined as T;
      }
      protected publish(): () => void {
        return () => undefined;
      }
      protected async dispatchEvent<T>(): Promise<T> {
        return undefined as T;
      }
    }
    await assert.rejects(startWith(new OwnTransportClient()), /a OwnTransportClient cannot be proven/);
  });

  it('a token nothing provides', async () => {
    await assert.rejects(startWith('NOT_REGISTERED'), /option "client" is "NOT_REGISTERED"\. No provider with that token holds a ClientProxy/);
  });

  it('a subclass of ClientRMQ is RMQ (told by its class chain)', async () => {
    const transports = await Transports.start(servers);
    class AuditedRmqClient extends ClientRMQ {}
    const client = new AuditedRmqClient((transports.clientOptions('rmq') as unknown as { options: never }).options);
    try {
      const app = await TestApp.start({ health: { connections: [microservice('sub', client)] } });
      try {
        await app.waitFor('sub', (s) => s.state === 'up', 30_000);
      } finally {
        await app.close();
      }
    } finally {
      await client.close();
      await transports.close();
    }
  });
});

describe('microservice kind: @MonitorConnection on a ClientProxy property', () => {
  it('a property injected with the ClientProxy is monitored, and the handle gives that proxy', async () => {
    const transports = await Transports.start(servers);
    @Injectable()
    class OrdersPublisher {
      @Inject('ORDERS')
      @MonitorConnection({ name: 'orders', kind: 'microservice', ...timing })
      readonly client!: ClientProxy;
    }
    try {
      const app = await TestApp.start({ imports: [ClientsModule.register([transports.clientOptions('mqtt', 'ORDERS')])], providers: [OrdersPublisher] });
      try {
        await app.waitFor('orders', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
        const client = app.app.get(OrdersPublisher).client;
        assert.equal(app.registry.get('orders').client(), client);
        await emitUntilReceived(servers, transports, 'mqtt', client, 'from the decorated provider');
      } finally {
        await app.close();
      }
    } finally {
      await transports.close();
    }
  });
});

describe('microservice kind: a NATS connection nats.js gave up on', () => {
  it("the server down longer than nats.js's reconnect budget: unwrap() throws, the package's connect() makes a new connection once the server is back, and the handle keeps the same ClientProxy", async (t) => {
    const transports = await Transports.start(servers);
    // A budget of about 1 s (2 attempts, 500 ms apart) instead of nats.js's 20 s, so that it gives up while the server is down.
    const giveUpSoon = { maxReconnectAttempts: 2, reconnectTimeWait: 500 };
    const app = await TestApp.start({
      imports: [ClientsModule.register([transports.clientOptions('nats', TOKENS.nats, giveUpSoon)])],
      health: { shutdown: { timeoutMs: SHUTDOWN_MS }, connections: [microservice('nats', TOKENS.nats)] },
    });
    const log = new StateLog(app, ['nats']);
    try {
      await app.waitFor('nats', (s) => s.state === 'up' && s.lastBeatAt !== undefined, 30_000);
      const client = app.app.get<ClientProxy>(TOKENS.nats);
      const first = client.unwrap<{ isClosed(): boolean }>();
      const killedAt = now();
      await servers.nats.kill();
      await log.waitFor('nats', 'down', killedAt, BOUND_MS + MARGIN_MS);
      await waitUntil(async () => first.isClosed(), 15_000, 'nats.js gives up on the connection (its reconnect attempts run out)');
      await waitUntil(async () => {
        try {
          client.unwrap();
          return false;
        } catch {
          return true;
        }
      }, 5_000, 'ClientNats drops the connection nats.js gave up on: unwrap() throws');
      t.diagnostic(`nats.js gave up ${Math.round(now() - killedAt)} ms after the kill; state ${app.snapshot('nats').state}, last error: ${app.snapshot('nats').lastError}`);
      await sleep(2_000);
      const restartedAt = now();
      await servers.nats.startAgain();
      await log.waitFor('nats', 'up', restartedAt, RECOVER_MS);
      t.diagnostic(`up ${Math.round(log.first('nats', 'up', restartedAt)!.at - restartedAt)} ms after the server was back`);
      const second = client.unwrap<{ isClosed(): boolean }>();
      assert.notEqual(second, first, 'a new connection under the proxy');
      assert.equal(second.isClosed(), false);
      assert.equal(app.registry.get('nats').client(), client, "the handle's client is still the app's ClientProxy");
      await emitUntilReceived(servers, transports, 'nats', client, 'after nats.js gave up');
    } finally {
      log.stop();
      if (!servers.nats.isRunning()) await servers.nats.startAgain();
      await app.close();
      await transports.close();
    }
  });
});
