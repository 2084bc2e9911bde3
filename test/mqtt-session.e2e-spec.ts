/**
 * A persistent MQTT session (clean: false, a fixed clientId) across a restart of the app: the broker queues the
 * QoS 1 messages published while no client holds the session, and delivers them right after its CONNACK to the
 * next process. The package's subscription must take them all: MQTT.js acknowledges each message as it hands it
 * to its 'message' listeners, so one delivered before the package listens is lost for good.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { MqttMessage } from '../lib/index.js';
import { MosquittoServer } from './kit/mosquitto.server.js';
import { TestApp } from './kit/test-app.js';

describe('a persistent MQTT session of the package\'s own client', () => {
  let broker: MosquittoServer;

  before(async () => {
    broker = await MosquittoServer.start();
  });

  after(async () => {
    await broker?.stop();
  });

  it('hands every message queued while the app was away to the next process\'s subscription', { timeout: 60_000 }, async () => {
    const topic = `session/${process.pid}/orders`;
    const clientId = `session-${process.pid}`;
    const start = (taken: string[]) =>
      TestApp.start({
        health: {
          shutdown: { timeoutMs: 2_000 },
          connections: [
            {
              name: 'orders',
              kind: 'mqtt',
              url: broker.url,
              mqttOptions: { clientId, clean: false },
              subscriptions: [{ topic, qos: 1, onMessage: (message: MqttMessage) => void taken.push(message.payload.toString()) }],
            },
          ],
        },
      });

    // The first process makes the session and its subscription, then stops.
    const first = await start([]);
    await first.waitFor('orders', (s) => s.state === 'up', 10_000);
    await first.close();

    // Published while nobody holds the session: the broker queues them for it.
    const publisher = await mqtt.connectAsync(broker.url);
    const sent = Array.from({ length: 20 }, (_, i) => `order-${i}`);
    for (const payload of sent) await publisher.publishAsync(topic, payload, { qos: 1 });
    await publisher.endAsync();

    const taken: string[] = [];
    const second = await start(taken);
    try {
      await second.waitFor('orders', (s) => s.state === 'up', 10_000);
      const deadline = Date.now() + 5_000;
      while (taken.length < sent.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(taken, sent);
    } finally {
      await second.close();
    }
  });
});
