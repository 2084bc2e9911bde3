/**
 * The MQTT kind does no harm to the app that installs it: one test per finding of the hostile review (and
 * of the e2e work after it), each seen failing on the adapter before its fix. Real mosquitto, private to
 * each test; faults from the chaos proxy, from SIGSTOP, and from a proxy that closes a connection on a
 * PUBLISH it forbids, as AWS IoT Core and Azure IoT Hub do.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
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
  it("an app's client busy with its own messages (handleMessage backpressure) keeps its connection (second review R1)", async () => {
    const server = await MosquittoServer.start();
    cleanups.push(() => server.stop());
    const url = `mqtt://${server.host}:${server.port}`;
    const appClient = await connected(url, { clientId: `app-${unique()}` });
    cleanups.push(() => appClient.endAsync(true));
    // MQTT.js's documented backpressure: a message is acknowledged, and the next packet read, once the app stored it.
    appClient.handleMessage = (_packet, callback) => void setTimeout(() => callback(), 100);
    await appClient.subscribeAsync('load/#', { qos: 1 });
    const counts = countCloses(appClient);
    const app = await start([mqttConnection({ name: 'telemetry', client: appClient })]);
    await app.waitForState('telemetry', 'up', 5_000);
    const publisher = await connected(url);
    cleanups.push(() => publisher.endAsync(true));
    // 60 messages: 6 s of the app's work, every packet in order behind them, PINGRESPs included.
    for (let i = 0; i < 60; i++) publisher.publish('load/x', `m${i}`, { qos: 1 });
    await sleep(9_000);
    const log = (await server.log()).split('\n').filter((l) => /connection-health-probe|closed|disconnect|Socket error/i.test(l));
    assert.deepEqual({ closes: counts.closes }, { closes: 0 }, `the app's transport dropped while it worked through its messages:\n${log.join('\n')}`);
  });

  it('a broker that makes the clientId of the username (use_username_as_clientid): a stall costs the app neither its connection, its will nor its session (second review R2)', async () => {
    const broker = await ownMosquitto(['use_username_as_clientid true']);
    cleanups.push(() => broker.child.kill('SIGKILL'));
    const url = `mqtt://${broker.host}:${broker.port}`;
    const willTopic = `will/${unique()}`;
    const observer = await connected(url, { username: 'observer' });
    cleanups.push(() => observer.endAsync(true));
    const wills: string[] = [];
    observer.on('message', (topic, payload) => topic === willTopic && wills.push(payload.toString()));
    await observer.subscribeAsync(willTopic, { qos: 1 });
    const appClient = await connected(url, {
      username: 'device-1',
      clientId: 'device-1',
      clean: false,
      will: { topic: willTopic, payload: Buffer.from('device-1 died'), qos: 1, retain: false },
    });
    cleanups.push(() => appClient.endAsync(true));
    await appClient.subscribeAsync('cmd/device-1', { qos: 1 });
    const counts = countCloses(appClient);
    const sessions: boolean[] = [];
    appClient.on('connect', (connack) => sessions.push(connack.sessionPresent));
    const app = await start([mqttConnection({ name: 'device', client: appClient })]);
    await app.waitForState('device', 'up', 5_000);
    // A broker stall of 2 s (as in the no-harm test F1): one late beat.
    broker.child.kill('SIGSTOP');
    await app.waitForState('device', 'down', 5_000);
    await sleep(2_000);
    broker.child.kill('SIGCONT');
    await app.waitForState('device', 'up', 15_000);
    await sleep(1_500);
    assert.deepEqual(
      { closes: counts.closes, wills, sessionsLost: sessions.filter((present) => !present).length },
      { closes: 0, wills: [], sessionsLost: 0 },
      'a stall must not cost the app its connection, its will or its persistent session',
    );
  });

  it('an MQTT 5 broker without subscription identifiers (CONNACK says so) never loses the app\'s connection to the package\'s SUBSCRIBE (second review R3)', async () => {
    // A conforming MQTT 5 broker that does not support subscription identifiers: a SUBSCRIBE carrying one is a
    // protocol error, answered by DISCONNECT 0xA1 (MQTT 5.0, 3.2.2.3.12 and 3.8.2.1.2).
    const server = net.createServer((socket) => {
      const parser = mqttPacket.parser({ protocolVersion: 5 });
      const send = (packet: object) => socket.write(mqttPacket.generate(packet as mqttPacket.Packet, { protocolVersion: 5 }));
      parser.on('packet', (packet: mqttPacket.Packet) => {
        if (packet.cmd === 'connect') send({ cmd: 'connack', reasonCode: 0, sessionPresent: false, properties: { subscriptionIdentifiersAvailable: false } });
        else if (packet.cmd === 'pingreq') send({ cmd: 'pingresp' });
        else if (packet.cmd === 'subscribe') {
          if (packet.properties?.subscriptionIdentifier !== undefined) {
            send({ cmd: 'disconnect', reasonCode: 0xa1 });
            socket.end();
          } else send({ cmd: 'suback', messageId: packet.messageId, granted: packet.subscriptions.map((s) => s.qos), properties: {} });
        }
      });
      socket.on('data', (chunk) => parser.parse(chunk));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const appClient = await connected(url, { protocolVersion: 5, reconnectPeriod: 300 });
    cleanups.push(() => appClient.endAsync(true));
    await appClient.subscribeAsync('app/own', { qos: 1 }); // the app's own: granted
    const counts = countCloses(appClient);
    const app = await start([mqttConnection({ name: 'telemetry', client: appClient, subscriptions: [{ topic: 'sensors/+/temp', onMessage: () => undefined }] })]);
    await sleep(4_000);
    const snapshot = app.registry.get('telemetry').snapshot();
    assert.deepEqual({ closes: counts.closes }, { closes: 0 }, `the app's client lost ${counts.closes} connections (${counts.connects} CONNECTs) to the package's SUBSCRIBE; package reads ${snapshot.state}`);
  });

  it("an MQTT 5 app that routes by its own subscription identifier keeps it on a filter it shares with a package subscription, which reads degraded naming the clash (second review R4)", async () => {
    const server = await MosquittoServer.start();
    cleanups.push(() => server.stop());
    const url = `mqtt://${server.host}:${server.port}`;
    const appClient = await connected(url, { protocolVersion: 5 });
    cleanups.push(() => appClient.endAsync(true));
    await appClient.subscribeAsync('orders/#', { qos: 1, properties: { subscriptionIdentifier: 7 } });
    const appGot: unknown[] = [];
    appClient.on('message', (_t, _p, packet) => appGot.push(packet.properties?.subscriptionIdentifier));
    const packageGot: string[] = [];
    const app = await start([
      mqttConnection({ name: 'orders', client: appClient, subscriptions: [{ topic: 'orders/#', onMessage: (m: { topic: string }) => void packageGot.push(m.topic) }] }),
    ]);
    await app.waitForState('orders', 'up', 5_000);
    const publisher = await connected(url);
    cleanups.push(() => publisher.endAsync(true));
    await publisher.publishAsync('orders/1', 'x', { qos: 1 });
    await sleep(500);
    assert.deepEqual(appGot, [7], "the app's subscription lost its identifier 7 (replaced by the package's SUBSCRIBE of the same filter)");
    await app.waitFor('orders', (s) => s.state === 'degraded', 5_000);
    assert.match(app.snapshot('orders').reason ?? '', /subscribes to 'orders\/#' itself/);
  });

});

/** A mosquitto of our own, with extra configuration lines. */
async function ownMosquitto(extra: string[]): Promise<{ host: string; port: number; child: ChildProcess; log: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rv2-mosq-'));
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const log = path.join(dir, 'log');
  writeFileSync(
    path.join(dir, 'm.conf'),
    ['user root', `listener ${port} 127.0.0.1`, 'allow_anonymous true', `log_dest file ${log}`, 'log_type all', 'connection_messages true', ...extra, ''].join('\n'),
  );
  const child = spawn('mosquitto', ['-c', path.join(dir, 'm.conf')], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    await sleep(50);
  }
  return { host: '127.0.0.1', port, child, log };
}

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
