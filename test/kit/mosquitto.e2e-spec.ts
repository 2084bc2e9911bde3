import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { CONNACK_ACCEPTED, CONNACK_NOT_AUTHORIZED, MosquittoServer } from './mosquitto.server.js';
import { isAlive } from './process.util.js';
import { MOSQUITTO_ENV, mosquittoFromEnv, sharedMosquitto } from './shared-servers.js';

function ms(since: number): number {
  return Math.round(performance.now() - since);
}

/**
 * The arguments of the client's next `event`. MqttClient's declared type is its own TypedEventEmitter, which
 * events.once() does not accept.
 */
function next<A extends unknown[] = unknown[]>(client: MqttClient, event: 'connect' | 'close' | 'message'): Promise<A> {
  return new Promise((resolve) => (client as unknown as NodeJS.EventEmitter).once(event, (...args: unknown[]) => resolve(args as A)));
}

const topic = () => `kit/${process.pid}/${Math.random().toString(36).slice(2)}`;

/** An MQTT.js client that never reconnects by itself (the test decides), once its CONNACK arrived. */
async function connected(server: MosquittoServer, options: IClientOptions = {}): Promise<{ client: MqttClient; sessionPresent: boolean }> {
  const client = mqtt.connect(server.url, { reconnectPeriod: 0, connectTimeout: 5_000, ...options });
  client.on('error', () => undefined); // the 'close' or a failed connect below tells
  const [connack] = await Promise.race([
    next<[{ sessionPresent: boolean }]>(client, 'connect'),
    next(client, 'close').then(() => Promise.reject(new Error('closed before CONNACK'))),
  ]);
  return { client, sessionPresent: connack.sessionPresent };
}

/** Publishes at QoS 1 (resolves on PUBACK) and waits for the message to come back on `client`'s subscription. */
async function roundTrip(client: MqttClient, on: string, payload: string): Promise<string> {
  const back = next<[string, Buffer]>(client, 'message');
  await client.publishAsync(on, payload, { qos: 1 });
  const [received, body] = await back;
  assert.equal(received, on);
  return body.toString();
}

describe('MosquittoServer', () => {
  let server: MosquittoServer;
  let startMs = 0;

  before(async () => {
    const started = performance.now();
    server = await MosquittoServer.start();
    startMs = ms(started);
  });
  after(() => server?.stop());

  for (const protocolVersion of [4, 5] as const) {
    it(`answers CONNECT, and a QoS 1 publish comes back on a QoS 1 subscription (MQTT ${protocolVersion === 4 ? '3.1.1' : '5'})`, async (t) => {
      if (protocolVersion === 4) t.diagnostic(`config + start + first CONNACK: ${startMs} ms`);
      assert.ok(isAlive(server.pid));
      assert.equal(server.url, `mqtt://127.0.0.1:${server.port}`);
      assert.equal(await server.connectOnce(), CONNACK_ACCEPTED);
      const { client } = await connected(server, { protocolVersion, clientId: `kit-roundtrip-${protocolVersion}` });
      try {
        const on = topic();
        const granted = await client.subscribeAsync(on, { qos: 1 });
        assert.deepEqual(granted.map((g) => g.qos), [1]);
        assert.equal(await roundTrip(client, on, 'hello'), 'hello');
        assert.deepEqual(server.connectedClients(), [`kit-roundtrip-${protocolVersion}`]);
      } finally {
        await client.endAsync();
      }
      assert.deepEqual(server.connectedClients(), []);
    });
  }

  it('kick() takes the session over: the broker closes the client\'s connection and stays up', async () => {
    const { client } = await connected(server, { protocolVersion: 5, clientId: 'kit-victim' });
    const closed = next(client, 'close');
    await server.kick('kit-victim');
    await closed;
    assert.equal(client.connected, false);
    assert.deepEqual(server.connectedClients(), []);
    assert.match(server.log(), /Client kit-victim already connected, closing old connection/);
    client.end(true);
  });

  it('kickAll() kicks every connected client, MQTT 3.1.1 and 5, and names them', async () => {
    const clients = await Promise.all([4, 5].map((protocolVersion) => connected(server, { protocolVersion: protocolVersion as 4 | 5, clientId: `kit-all-${protocolVersion}` })));
    const closed = clients.map(({ client }) => next(client, 'close'));
    assert.deepEqual((await server.kickAll()).sort(), ['kit-all-4', 'kit-all-5']);
    await Promise.all(closed);
    assert.deepEqual(server.connectedClients(), []);
    for (const { client } of clients) client.end(true);
  });

  it('kill() drops clients with a FIN; startAgain() answers on the same port, without the old sessions', async (t) => {
    const { client } = await connected(server, { clientId: 'kit-persistent', clean: false });
    await client.subscribeAsync(topic(), { qos: 1 });
    const closed = next(client, 'close');
    const pid = server.pid;
    await server.kill();
    assert.equal(isAlive(pid), false);
    assert.equal(server.isRunning(), false);
    await closed;
    client.end(true);
    const started = performance.now();
    await server.startAgain();
    t.diagnostic(`start again after kill -9: ${ms(started)} ms`);
    assert.notEqual(server.pid, pid);
    const again = await connected(server, { clientId: 'kit-persistent', clean: false });
    assert.equal(again.sessionPresent, false, 'persistence is off by default');
    await again.client.endAsync();
  });

  it('pause() hangs the broker: nothing answers until resume()', async () => {
    const { client } = await connected(server);
    try {
      const on = topic();
      await client.subscribeAsync(on, { qos: 1 });
      server.pause();
      let acked = false;
      const published = client.publishAsync(on, 'late', { qos: 1 }).then(() => (acked = true));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(acked, false);
      server.resume();
      await published;
    } finally {
      server.resume();
      await client.endAsync();
    }
  });

  it('attach() kills and starts again a broker it did not start, and cannot stop it', async () => {
    const handle = MosquittoServer.attach(server.location);
    await handle.kill();
    assert.equal(server.isRunning(), false);
    await handle.startAgain();
    await handle.stop();
    assert.equal(await server.connectOnce(), CONNACK_ACCEPTED);
  });

  it('stop() removes the process and the folder, is idempotent, and leaves nothing to attach to', async () => {
    const other = await MosquittoServer.start();
    const pid = other.pid;
    await other.stop();
    await other.stop();
    assert.equal(isAlive(pid), false);
    assert.equal(existsSync(other.dir), false);
    assert.throws(() => MosquittoServer.attach(other.location), /was the server that owned it stopped already/);
  });
});

describe('MosquittoServer with a user', () => {
  let server: MosquittoServer;
  before(async () => (server = await MosquittoServer.start({ user: { username: 'kit', password: 'se cr"et' } })));
  after(() => server?.stop());

  it('refuses anonymous and wrong logins (CONNACK 5) and accepts the user', async () => {
    assert.equal(await server.connectOnce(), CONNACK_ACCEPTED);
    assert.equal(await server.connectOnce({ username: null }), CONNACK_NOT_AUTHORIZED);
    assert.equal(await server.connectOnce({ username: 'kit', password: 'wrong' }), CONNACK_NOT_AUTHORIZED);
    await assert.rejects(connected(server), /closed before CONNACK/);
    const { client } = await connected(server, { username: 'kit', password: 'se cr"et' });
    await client.endAsync();
  });
});

describe('MosquittoServer with persistence', () => {
  let server: MosquittoServer;
  before(async () => (server = await MosquittoServer.start({ persistence: true })));
  after(() => server?.stop());

  it('keeps a persistent session and its queued QoS 1 message across kill -9 and startAgain()', async () => {
    const on = topic();
    const options = { clientId: 'kit-durable', clean: false, protocolVersion: 4 } as const;
    const first = await connected(server, options);
    await first.client.subscribeAsync(on, { qos: 1 });
    await first.client.endAsync();
    const publisher = await connected(server);
    await publisher.client.publishAsync(on, 'queued while offline', { qos: 1 });
    await publisher.client.endAsync();
    // autosave_interval 1 with autosave_on_changes: the queued message is on disk within a second.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await server.restart();
    // The queued message arrives right after the CONNACK: listen before connecting.
    let sessionPresent: boolean | undefined;
    const message = new Promise<string>((resolve) => {
      const again = mqtt.connect(server.url, { ...options, reconnectPeriod: 0 });
      again.on('connect', (connack) => (sessionPresent = connack.sessionPresent));
      again.on('message', (_topic, body) => {
        resolve(body.toString());
        again.end();
      });
    });
    assert.equal(await message, 'queued while offline');
    assert.equal(sessionPresent, true);
  });

  it('kick() leaves a persistent session in place', async () => {
    const on = topic();
    const options = { clientId: 'kit-kicked-durable', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 300 } } as const;
    const { client } = await connected(server, options);
    await client.subscribeAsync(on, { qos: 1 });
    const closed = next(client, 'close');
    await server.kick('kit-kicked-durable');
    await closed;
    client.end(true);
    const again = await connected(server, options);
    try {
      assert.equal(again.sessionPresent, true);
      assert.equal(await roundTrip(again.client, on, 'still subscribed'), 'still subscribed');
    } finally {
      await again.client.endAsync();
    }
  });
});

describe('sharedMosquitto()', () => {
  it('attaches to the broker that env describes, else starts a private one', async () => {
    const server = await sharedMosquitto();
    assert.equal(await server.connectOnce(), CONNACK_ACCEPTED);
    const fromEnv = mosquittoFromEnv({ [MOSQUITTO_ENV.host]: server.host, [MOSQUITTO_ENV.port]: String(server.port), [MOSQUITTO_ENV.dir]: server.dir });
    assert.equal(fromEnv?.pid, server.pid);
    assert.equal(mosquittoFromEnv({}), undefined);
  });
});
