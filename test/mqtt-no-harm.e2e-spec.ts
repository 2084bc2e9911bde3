/**
 * The MQTT kind does no harm to the app that installs it: one test per finding of the hostile review (and
 * of the e2e work after it), each seen failing on the adapter before its fix. Real mosquitto, private to
 * each test; faults from the chaos proxy, from SIGSTOP, and from a proxy that closes a connection on a
 * PUBLISH it forbids, as AWS IoT Core and Azure IoT Hub do.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import type { ConnectionDefinition, ConnectionEvent } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { MosquittoServer } from './kit/mosquitto.server.js';
import { waitUntil } from './kit/state-log.js';
import { TestApp } from './kit/test-app.js';

const timing = {
  heartbeat: { intervalMs: 1_000, timeoutMs: 500, connectTimeoutMs: 3_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: Infinity },
};
const RECOVER_MS = 15_000;
const unique = () => randomBytes(4).toString('hex');
const mqttConnection = (definition: Record<string, unknown>) => ({ kind: 'mqtt', ...timing, ...definition }) as unknown as ConnectionDefinition;

function statesOf(app: TestApp, name: string): Array<{ to: string; reason: string }> {
  const seen: Array<{ to: string; reason: string }> = [];
  app.registry.get(name).events$.subscribe((event: ConnectionEvent) => {
    if (event.type === 'state') seen.push({ to: event.to, reason: event.reason });
  });
  return seen;
}

async function connected(url: string, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, options);
  client.on('error', () => undefined); // an app listens to its client's errors
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  return client;
}

/** Counts the transports a client loses, and the CONNECTs it sends. */
function countCloses(client: MqttClient): { closes: number; connects: number } {
  const counts = { closes: 0, connects: 0 };
  client.on('close', () => (counts.closes += 1));
  client.on('packetsend', (packet) => packet.cmd === 'connect' && (counts.connects += 1));
  return counts;
}

describe('MQTT kind: no harm', { timeout: 300_000 }, () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  });
  const broker = async (options = {}) => {
    const server = await MosquittoServer.start(options);
    cleanups.push(() => server.stop());
    return server;
  };
  const proxyTo = async (server: MosquittoServer) => {
    const proxy = await ChaosProxy.start(server.host, server.port);
    cleanups.push(() => proxy.close());
    return proxy;
  };
  const start = async (connections: ConnectionDefinition[]) => {
    const app = await TestApp.start({ health: { connections } });
    cleanups.push(() => app.app.close());
    return app;
  };
  /** A subscriber of its own that collects the wills published to `topic`. */
  const willsOn = async (server: MosquittoServer, topic: string) => {
    const observer = await connected(`mqtt://${server.host}:${server.port}`);
    cleanups.push(() => observer.endAsync(true));
    const wills: string[] = [];
    observer.on('message', (at, payload) => at === topic && wills.push(payload.toString()));
    await observer.subscribeAsync(topic, { qos: 1 });
    return wills;
  };

  it("a broker that stalls for longer than the deadline keeps the app's connection and publishes no will (review F1)", async () => {
    const server = await broker();
    const willTopic = `will/${unique()}`;
    const wills = await willsOn(server, willTopic);
    // The app's client: keepalive 60 s (MQTT.js's default), it bears a 90 s silence by itself.
    const appClient = await connected(`mqtt://${server.host}:${server.port}`, { will: { topic: willTopic, payload: Buffer.from('app died'), qos: 1, retain: false } });
    cleanups.push(() => appClient.endAsync(true));
    const counts = countCloses(appClient);
    const app = await start([mqttConnection({ name: 'devices', client: appClient })]);
    await app.waitForState('devices', 'up', 5_000);
    // A broker that stalls for 2.5 s (a GC pause, a disk sync, a VM's stolen time), then goes on.
    await server.pause();
    await app.waitForState('devices', 'down', 5_000);
    await sleep(2_500);
    server.resume();
    await app.waitForState('devices', 'up', RECOVER_MS);
    await sleep(1_000);
    assert.deepEqual({ closes: counts.closes, wills }, { closes: 0, wills: [] }, "the app's transport is never dropped for a stall, and no will is published");
  });

  it("the package's own client, with a will, rides out a broker stall the same way", async () => {
    const server = await broker();
    const willTopic = `will/${unique()}`;
    const wills = await willsOn(server, willTopic);
    const app = await start([
      mqttConnection({ name: 'devices', url: `mqtt://${server.host}:${server.port}`, mqttOptions: { will: { topic: willTopic, payload: 'package client died', qos: 1, retain: false } } }),
    ]);
    await app.waitForState('devices', 'up', 5_000);
    const client = app.registry.get('devices').client() as MqttClient;
    const counts = countCloses(client);
    await server.pause();
    await app.waitForState('devices', 'down', 5_000);
    await sleep(2_500);
    server.resume();
    await app.waitForState('devices', 'up', RECOVER_MS);
    await sleep(1_000);
    assert.deepEqual({ closes: counts.closes, wills }, { closes: 0, wills: [] });
  });

  it("a flow that died alone (a NAT that forgot it) is still dropped, the app's client and the package's alike, and both come back", async () => {
    const server = await broker();
    const appProxy = await proxyTo(server);
    const ownProxy = await proxyTo(server);
    const appClient = await connected(`mqtt://127.0.0.1:${appProxy.port}`, { reconnectPeriod: 200 });
    cleanups.push(() => appClient.endAsync(true));
    const appCounts = countCloses(appClient);
    const app = await start([
      mqttConnection({ name: 'app', client: appClient }),
      mqttConnection({ name: 'own', url: `mqtt://127.0.0.1:${ownProxy.port}` }),
    ]);
    await app.waitForState('app', 'up', 5_000);
    await app.waitForState('own', 'up', 5_000);
    const ownClient = app.registry.get('own').client() as MqttClient;
    const ownCounts = countCloses(ownClient);
    appProxy.forget();
    ownProxy.forget();
    await app.waitForState('app', 'down', 5_000);
    await app.waitForState('own', 'down', 5_000);
    // Nothing is lifted: the old flows stay dead, and only new connections get through.
    await app.waitFor('app', (s) => s.state === 'up', RECOVER_MS);
    await app.waitFor('own', (s) => s.state === 'up', RECOVER_MS);
    assert.deepEqual({ app: appCounts.closes, own: ownCounts.closes }, { app: 1, own: 1 }, 'each dead transport dropped once');
    assert.equal(app.registry.get('own').client(), ownClient, "the package's client is the same object, connected anew");
  });

  it("a broker that closes the connection on a forbidden PUBLISH never loses the app's client to a beat (review F3)", async () => {
    const server = await broker();
    // AWS IoT Core and Azure IoT Hub emulated: the connection is closed on a PUBLISH to a topic not allowed ($...).
    const proxy = await forbiddingProxy(server.host, server.port, (topic) => topic.startsWith('$'));
    cleanups.push(() => proxy.close());
    const appClient = await connected(`mqtt://127.0.0.1:${proxy.port}`, { reconnectPeriod: 200 });
    cleanups.push(() => appClient.endAsync(true));
    const counts = countCloses(appClient);
    const app = await start([mqttConnection({ name: 'devices', client: appClient })]);
    const states = statesOf(app, 'devices');
    await app.waitForState('devices', 'up', 5_000);
    await sleep(6_000);
    assert.equal(counts.closes, 0, `the app's client lost ${counts.closes} connection(s); states: ${states.map((s) => `${s.to} (${s.reason})`).join(' -> ')}`);
    assert.equal(app.snapshot('devices').state, 'up');
  });

  it("the package's own client on such a broker reads down naming the beat topic and the fix, and backs off; probe 'ping' keeps it up", async () => {
    const server = await broker();
    const proxy = await forbiddingProxy(server.host, server.port, (topic) => topic.startsWith('$'));
    cleanups.push(() => proxy.close());
    const app = await start([
      mqttConnection({ name: 'publishing', url: `mqtt://127.0.0.1:${proxy.port}`, reconnect: { initialDelayMs: 200, maxDelayMs: 2_000, maxAttempts: Infinity } }),
      mqttConnection({ name: 'pinging', url: `mqtt://127.0.0.1:${proxy.port}`, probe: 'ping' }),
    ]);
    await app.waitForState('pinging', 'up', 5_000);
    const pinging = countCloses(app.registry.get('pinging').client() as MqttClient);
    const before = proxy.connections;
    await sleep(6_000);
    const { state, reason, lastError } = app.snapshot('publishing');
    assert.notEqual(state, 'up');
    assert.match(`${reason} ${lastError ?? ''}`, /closed during the heartbeat's PUBLISH to '\$connection-health\/[^']+'.*probe: 'ping'/s);
    // With a backoff growing to 2 s, far fewer than the 60 or so a 100 ms loop would make; the pinging one makes none.
    assert.ok(proxy.connections - before <= 8, `${proxy.connections - before} connections in 6 s`);
    assert.equal(pinging.closes, 0);
    assert.equal(app.snapshot('pinging').state, 'up');
  });

  it('an MQTT 5 $share handler on the app\'s client gets its share alone, not what the app\'s own subscription brings (review F5)', async () => {
    const server = await broker();
    const url = `mqtt://${server.host}:${server.port}`;
    const base = `jobs/${unique()}`;
    const appClient = await connected(url, { protocolVersion: 5 });
    cleanups.push(() => appClient.endAsync(true));
    // The app itself (an audit log, say) subscribes to the plain filter on the same client.
    const audited: string[] = [];
    appClient.on('message', (_topic, payload) => audited.push(payload.toString()));
    await appClient.subscribeAsync(`${base}/#`, { qos: 1 });
    const worked: string[] = [];
    const app = await start([
      mqttConnection({ name: 'devices', client: appClient, subscriptions: [{ topic: `$share/workers/${base}/#`, onMessage: (m: { payload: Buffer }) => worked.push(m.payload.toString()) }] }),
    ]);
    await app.waitForState('devices', 'up', 5_000);
    const otherWorker = await connected(url, { protocolVersion: 5 });
    cleanups.push(() => otherWorker.endAsync(true));
    const otherWorked: string[] = [];
    otherWorker.on('message', (_topic, payload) => otherWorked.push(payload.toString()));
    await otherWorker.subscribeAsync(`$share/workers/${base}/#`, { qos: 1 });
    const publisher = await connected(url);
    cleanups.push(() => publisher.endAsync(true));
    for (let i = 0; i < 10; i += 1) await publisher.publishAsync(`${base}/job`, `job-${i}`, { qos: 1 });
    await waitUntil(() => worked.length + otherWorked.length >= 10 && new Set(audited).size >= 10, 5_000, 'every job handled by the group, and audited');
    await sleep(300);
    assert.equal(new Set(worked).size, worked.length, 'no job twice');
    assert.equal(worked.length + otherWorked.length, 10, 'the group handled each job once');
    assert.ok(worked.length < 10, `the shared handler took ${worked.length} of 10: its share only`);
  });

  it("a 3.1.1 $share subscription on the app's client is refused at bootstrap, since its messages name no subscription", async () => {
    const server = await broker();
    const appClient = await connected(`mqtt://${server.host}:${server.port}`);
    cleanups.push(() => appClient.endAsync(true));
    await assert.rejects(
      TestApp.start({ health: { connections: [mqttConnection({ name: 'devices', client: appClient, subscriptions: [{ topic: '$share/workers/jobs/#', onMessage: () => undefined }] })] } }),
      /option "subscriptions" is "\$share\/workers\/jobs\/#"\. A shared subscription on the app's client needs MQTT 5/,
    );
  });
});

/** A TCP proxy that closes the client's connection when it PUBLISHes to a topic `forbidden` says it may not. */
async function forbiddingProxy(host: string, port: number, forbidden: (topic: string) => boolean): Promise<{ port: number; connections: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const proxy = { port: 0, connections: 0, close: async () => undefined as void };
  const server = net.createServer((client) => {
    proxy.connections += 1;
    const upstream = net.connect({ host, port });
    sockets.add(client).add(upstream);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connect') (parser as unknown as { settings: object }).settings = { protocolVersion: packet.protocolVersion };
      if (packet.cmd === 'publish' && forbidden(packet.topic)) {
        client.destroy();
        upstream.destroy();
      }
    });
    client.on('data', (chunk) => {
      parser.parse(chunk);
      if (!client.destroyed) upstream.write(chunk);
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as net.AddressInfo).port;
  proxy.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  return proxy;
}
