import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/kit/process.util.js';
import amqp from 'amqplib';
import mqtt from 'mqtt';
import { connect as connectNats } from 'nats';
import { sharedActiveMq, sharedDovecot, sharedMosquitto, sharedNats, sharedRabbitMq, sharedRedis } from '../test/kit/shared-servers.js';

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), 'src', 'main.js');


describe('the sample app, as the README runs it', () => {
  it("answers its probes from the SQLite, IMAP, STOMP, Redis, AMQP, MQTT, NATS and ClientProxy snapshots, works its Redis jobs, AMQP orders, MQTT and NATS messages and exits 0 on SIGTERM", async () => {
    const port = await freePort();
    const imap = await sharedDovecot(); // the sample's IMAP connection, pointed at the run's dovecot
    const broker = await sharedActiveMq(); // the sample's STOMP connection, pointed at the run's ActiveMQ
    const redis = await sharedRedis(); // the sample's Redis worker, pointed at the run's redis-server
    const rabbit = await sharedRabbitMq(); // the sample's AMQP consumer, pointed at the run's RabbitMQ
    const mosquitto = await sharedMosquitto(); // the sample's MQTT subscription, pointed at the run's mosquitto
    const nats = await sharedNats(); // the sample's NATS subscription, pointed at the run's nats-server
    const queue = `sample:jobs:${process.pid}`;
    const orders = `sample.orders.${process.pid}`;
    const devices = `sample/${process.pid}/devices`;
    const events = `sample.${process.pid}.events`;
    const env = {
      ...process.env,
      PORT: String(port),
      IMAP_HOST: imap.host,
      IMAP_PORT: String(imap.port),
      STOMP_HOST: broker.host,
      STOMP_PORT: String(broker.port),
      REDIS_URL: `redis://${redis.host}:${redis.port}`,
      REDIS_QUEUE: queue,
      AMQP_URL: rabbit.amqpUrl,
      AMQP_QUEUE: orders,
      MQTT_URL: mosquitto.url,
      MQTT_TOPIC: `${devices}/#`,
      NATS_URL: nats.url,
      NATS_SUBJECT: `${events}.>`,
    };
    const child = spawn(process.execPath, [main], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    try {
      const deadline = Date.now() + 20_000;
      while (!output.includes('Sample listening') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(output, /Sample listening/);
      let body: { status: string; details: Record<string, { status: string }> } | undefined;
      while (Date.now() < deadline) {
        const response = await fetch(`http://127.0.0.1:${port}/health`);
        body = (await response.json()) as typeof body;
        if (response.status === 200 && body?.status === 'ok') break; // 'degraded' until IMAP, STOMP, Redis, AMQP, MQTT, NATS and the ClientProxy are up too
        await new Promise((r) => setTimeout(r, 100));
      }
      // The default detail level: each connection's status, nothing of hosts, users, reasons or errors.
      assert.deepEqual(body?.details, {
        database: { status: 'up' },
        mail: { status: 'up' },
        broker: { status: 'up' },
        orders: { status: 'up' },
        devices: { status: 'up' },
        events: { status: 'up' },
        jobs: { status: 'up' },
        notifications: { status: 'up' },
      });
      assert.equal(body?.status, 'ok');
      // The worker, blocked in BLPOP all along under the monitor's beats, takes the job.
      await redis.command('LPUSH', queue, 'hello');
      while (!output.includes(`job from ${queue}: hello`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(output, new RegExp(`job from ${queue}: hello`));
      // The package's consumer, made on its own connection, takes an order published by another.
      const publisher = await amqp.connect(rabbit.amqpUrl);
      try {
        const channel = await publisher.createConfirmChannel();
        channel.sendToQueue(orders, Buffer.from('hello'));
        await channel.waitForConfirms();
      } finally {
        await publisher.close();
      }
      while (!output.includes(`order from ${orders}: hello`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(output, new RegExp(`order from ${orders.replaceAll('.', '\\.')}: hello`));
      // The package's subscription, made on its own client, takes a message another client publishes.
      const device = await mqtt.connectAsync(mosquitto.url);
      try {
        await device.publishAsync(`${devices}/d1/status`, 'hello', { qos: 1 });
      } finally {
        await device.endAsync();
      }
      while (!output.includes(`message on ${devices}/d1/status: hello`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(output, new RegExp(`message on ${devices}/d1/status: hello`));
      // The package's subscription, made on its own NATS connection, takes a message another connection publishes.
      const emitter = await connectNats({ servers: nats.url });
      try {
        emitter.publish(`${events}.created`, 'hello');
        await emitter.flush();
      } finally {
        await emitter.close();
      }
      while (!output.includes(`event on ${events}.created: hello`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(output, new RegExp(`event on ${events.replaceAll('.', '\\.')}\\.created: hello`));
      for (const probe of ['live', 'ready', 'startup']) {
        assert.equal((await fetch(`http://127.0.0.1:${port}/health/${probe}`)).status, 200, probe);
      }
      const page = await fetch(`http://127.0.0.1:${port}/health/ui`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /data-connection="jobs"/, 'the status page lists the connections');
      child.kill('SIGTERM');
      const [code, signal] = await once(child, 'exit');
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, output);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
