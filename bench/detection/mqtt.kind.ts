import mqtt from 'mqtt';
import { MosquittoServer } from '../../test/kit/mosquitto.server.js';
import { now } from '../kit/stats.js';
import type { MqttConnectionDefinition } from '../../lib/index.js';
import type { DetectionKind, MonitoredConnection, Noticed, RawWatch } from './detection-kind.interface.js';

/**
 * MQTT.js with its defaults (MQTT 3.1.1, keepalive 60 s: PINGREQ after 60 s without an ack, 'Keepalive timeout'
 * 30 s later; reconnectPeriod 1 s; connectTimeout 30 s; clean session, resubscribe), subscribed at QoS 1 to a
 * topic of its own and waiting for messages. A report is 'offline', 'close', 'error' or a server 'disconnect'.
 */
async function watchMqttJs(host: string, port: number): Promise<RawWatch> {
  let report!: (how: string) => void;
  const noticed = new Promise<Noticed>((resolve) => (report = (how) => resolve({ at: now(), how })));
  const client = mqtt.connect(`mqtt://${host}:${port}`, { clientId: `bench-${process.pid}-${Math.random().toString(36).slice(2)}` });
  client.on('error', (error: Error) => report(`'error': ${error.message}`));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  client.on('offline', () => report(`'offline'`));
  client.on('close', () => report(`'close'`));
  client.on('disconnect', (packet) => report(`'disconnect' (reason ${packet.reasonCode ?? '-'})`));
  await client.subscribeAsync(`bench/${process.pid}/${Math.random().toString(36).slice(2)}`, { qos: 1 });
  return {
    noticed,
    // end(true) destroys the socket without DISCONNECT, also one a blackhole keeps silent, and stops its reconnects.
    close: () => client.endAsync(true),
  };
}

const topicOfItsOwn = () => `bench/${process.pid}/${Math.random().toString(36).slice(2)}`;

/** The package's own client (`url`: it connects, and reconnects on the engine's backoff), with one subscription of the app's. */
function ownClient(host: string, port: number): MonitoredConnection {
  return {
    definition: {
      name: 'devices',
      kind: 'mqtt',
      url: `mqtt://${host}:${port}`,
      subscriptions: [{ topic: topicOfItsOwn(), onMessage: () => undefined }],
    } satisfies MqttConnectionDefinition,
  };
}

/**
 * The app's MQTT.js client, subscribed itself, handed in as `client`: reconnectPeriod 1 s as by default, but
 * connectTimeout 1 s instead of 30 s, since 'up again' after a blackhole waits for the app's client, whose
 * CONNECT sent into the blackhole is answered by nothing but that timeout.
 */
async function watchedClient(host: string, port: number): Promise<MonitoredConnection> {
  const client = mqtt.connect(`mqtt://${host}:${port}`, { connectTimeout: 1_000 });
  // An app listens to its client's errors (an unheard 'error' event throws).
  client.on('error', () => undefined);
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  await client.subscribeAsync(topicOfItsOwn(), { qos: 1 });
  return {
    definition: { name: 'devices', kind: 'mqtt', client } satisfies MqttConnectionDefinition,
    dispose: () => client.endAsync(true),
  };
}

/**
 * mosquitto 2.0 from the test kit, one kind per way the package gets its client: its own (`url`, with a
 * subscription), an app's MQTT.js client. The raw client's baseline runs once, with the first. The server's
 * own kick is a session takeover: a CONNECT with each connected client's id (mosquitto 2.0 has no admin
 * command to close a client), which makes the broker close the older connection (a FIN; MQTT 5 sends no
 * DISCONNECT first).
 */
function mosquittoKind(shown: string, connection: DetectionKind<MosquittoServer>['connection'], raw: DetectionKind['raw'] = []): DetectionKind<MosquittoServer> {
  return {
    label: `mosquitto 2.0 · ${shown}`,
    server: 'mosquitto 2.0',
    startServer: () => MosquittoServer.start(),
    connection,
    raw,
    kick: { how: 'session takeover', run: (server) => server.kickAll() },
  };
}

export const mosquittoMqttKind = mosquittoKind('MQTT.js (url, subscription)', ownClient, [
  { name: 'MQTT.js', usage: 'subscribed at QoS 1, waiting for messages, keepalive 60 s, reconnectPeriod 1 s', watch: watchMqttJs },
]);
export const mosquittoWatchedMqttKind = mosquittoKind("MQTT.js (the app's client)", watchedClient);
