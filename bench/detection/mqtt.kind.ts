import mqtt from 'mqtt';
import { MosquittoServer } from '../../test/kit/mosquitto.server.js';
import { now } from '../kit/stats.js';
import type { DetectionKind, Noticed, RawWatch } from './detection-kind.interface.js';

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

/**
 * mosquitto 2.0 from the test kit; no package kind yet, so only the raw client's baseline runs. The server's own
 * kick is a session takeover: a CONNECT with each connected client's id (mosquitto 2.0 has no admin command to
 * close a client), which makes the broker close the older connection (a FIN; MQTT 5 sends no DISCONNECT first).
 */
export const mosquittoMqttKind: DetectionKind<MosquittoServer> = {
  label: 'mosquitto 2.0 · MQTT.js',
  server: 'mosquitto 2.0',
  startServer: () => MosquittoServer.start(),
  raw: [{ name: 'MQTT.js', usage: 'subscribed at QoS 1, waiting for messages, keepalive 60 s, reconnectPeriod 1 s', watch: watchMqttJs }],
  kick: { how: 'session takeover', run: (server) => server.kickAll() },
};
