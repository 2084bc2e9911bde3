/**
 * A STOMP message whose handler fails, against real brokers, in an app run as a child process (as a real
 * one runs: a crash is the process ending). Before the fix the handler's error was rethrown on the next
 * tick and the process died with code 1; with `client-individual` the message then came back after every
 * restart, a crash loop. Now the process lives on, the failure is logged, and the message is NACKed, so
 * what the broker does with a refused message decides its fate:
 * - ActiveMQ 5.17 moves a NACKed persistent message to its dead-letter queue ActiveMQ.DLQ at once
 *   (measured: no redelivery to the subscriber first);
 * - RabbitMQ 3.10 requeues it (NACK's `requeue` defaults to true) and delivers it again at once.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { sharedActiveMq, sharedRabbitMq } from './kit/shared-servers.js';
import { stompPublish, stompWatch, type StompLogin, type StompWatch } from './kit/stomp.util.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'poison-message.app.js');
const WITHIN_MS = 15_000;
const unique = () => randomBytes(4).toString('hex');
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The app in a child process, and everything it printed. */
class PoisonApp {
  output = '';
  exit?: { code: number | null; signal: NodeJS.Signals | null };

  private constructor(private readonly child: ChildProcess) {
    child.stdout?.on('data', (chunk) => (this.output += chunk));
    child.stderr?.on('data', (chunk) => (this.output += chunk));
    child.once('exit', (code, signal) => (this.exit = { code, signal }));
  }

  static async start(broker: { host: string; port: number }, login: StompLogin, queue: string): Promise<PoisonApp> {
    const env = {
      ...process.env,
      NO_COLOR: '1',
      BROKER_HOST: broker.host,
      BROKER_PORT: String(broker.port),
      QUEUE: queue,
      AUTO_QUEUE: `${queue}-auto`,
      CLIENT_QUEUE: `${queue}-client`,
      ...(login.login === undefined ? {} : { BROKER_LOGIN: login.login, BROKER_PASSCODE: login.passcode ?? '' }),
    };
    const app = new PoisonApp(spawn(process.execPath, [fixture], { stdio: ['ignore', 'pipe', 'pipe'], env }));
    await app.waitFor(/^UP$/m);
    return app;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** Resolves with the first match in the output; fails at once if the process has ended. */
  async waitFor(pattern: RegExp, withinMs = WITHIN_MS): Promise<RegExpMatchArray> {
    const deadline = Date.now() + withinMs;
    for (;;) {
      const match = this.output.match(pattern);
      if (match) return match;
      if (this.exit) assert.fail(`the app ended (code ${this.exit.code}, signal ${this.exit.signal}) before printing ${pattern}; it printed:\n${this.output}`);
      if (Date.now() > deadline) assert.fail(`the app did not print ${pattern} within ${withinMs} ms; it printed:\n${this.output}`);
      await sleep(20);
    }
  }

  count(pattern: RegExp): number {
    return this.output.match(new RegExp(pattern.source, 'gm'))?.length ?? 0;
  }

  /** SIGTERM, as an orchestrator stops it: a clean stop ends with code 0. */
  async stop(): Promise<number | null> {
    if (!this.alive) return this.exit?.code ?? null;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const [code] = (await exited) as [number | null];
    clearTimeout(timer);
    return code;
  }
}

describe('a STOMP handler that fails on a message, in a real process', () => {
  describe('ActiveMQ', () => {
    const queue = `/queue/ch-poison-${unique()}`;
    let broker: { host: string; port: number };
    let deadLetters: StompWatch;
    let app: PoisonApp;

    before(async () => {
      broker = await sharedActiveMq();
      deadLetters = await stompWatch(broker.host, broker.port, '/queue/ActiveMQ.DLQ');
      app = await PoisonApp.start(broker, {}, queue);
    });
    after(async () => {
      deadLetters?.close();
      await app?.stop();
    });

    it('lives on, logs the failure, NACKs the message, and ActiveMQ moves it to ActiveMQ.DLQ', async () => {
      const body = `poison-always-${unique()}`;
      // Persistent: ActiveMQ's default dead-letter strategy drops a refused non-persistent message instead.
      await stompPublish(broker.host, broker.port, queue, body, {}, 5_000, { persistent: 'true' });
      await app.waitFor(
        new RegExp(
          `ERROR \\[ConnectionHealth\\] ${escape(`Connection "broker": the onMessage handler of ${queue} threw (cannot process ${body}); the message is NACKed in 1000 ms, so the broker's redelivery and dead-letter rules apply.`)}`,
        ),
      );
      const dead = await deadLetters.waitFor((message) => message.body === body, WITHIN_MS);
      assert.equal(dead.headers['original-destination'], queue);
      // The app goes on consuming: a good message after the poison one is processed.
      const good = `good-${unique()}`;
      await stompPublish(broker.host, broker.port, queue, good);
      await app.waitFor(new RegExp(`^PROCESSED ${good}$`, 'm'));
      assert.equal(app.count(new RegExp(`^RECEIVED ${body} `)), 1, 'ActiveMQ did not deliver the NACKed message again');
      assert.ok(app.alive);
    });

    it("sends no NACK under ack 'client', where it would refuse every earlier unanswered message too", async () => {
      const body = `poison-always-${unique()}`;
      await stompPublish(broker.host, broker.port, `${queue}-client`, body, {}, 5_000, { persistent: 'true' });
      await app.waitFor(new RegExp(escape(`with ack 'client' a NACK would also refuse every earlier unanswered message, so none is sent`)));
      await sleep(2_000); // past the delay of a NACK, had one been sent
      assert.equal(deadLetters.messages.filter((message) => message.body === body).length, 0, 'not NACKed, so not dead-lettered');
      assert.ok(app.alive);
    });

    it('sends nothing more for a message the handler acknowledged before it threw', async () => {
      const body = `ack-then-throw-${unique()}`;
      await stompPublish(broker.host, broker.port, queue, body, {}, 5_000, { persistent: 'true' });
      // The failure's log line may be held back (one a minute per subscription): what counts is what the broker sees.
      await app.waitFor(new RegExp(`^RECEIVED ${body} `, 'm'));
      await sleep(1_500); // past the delay of a NACK, had one been sent
      // A message after it proves the session went on, and ordering on one queue puts it after any redelivery.
      const good = `good-${unique()}`;
      await stompPublish(broker.host, broker.port, queue, good);
      await app.waitFor(new RegExp(`^PROCESSED ${good}$`, 'm'));
      assert.equal(app.count(new RegExp(`^RECEIVED ${body} `)), 1, 'the acknowledged message was not delivered again');
      assert.equal(deadLetters.messages.filter((message) => message.body === body).length, 0, 'the acknowledged message was not dead-lettered');
      assert.ok(app.alive);
    });

    it("says that a message is lost to the app when its handler fails under ack 'auto'", async () => {
      const body = `poison-always-${unique()}`;
      await stompPublish(broker.host, broker.port, `${queue}-auto`, body, {}, 5_000, { persistent: 'true' });
      await app.waitFor(
        new RegExp(escape(`the onMessage handler of ${queue}-auto threw (cannot process ${body}); with ack 'auto' the broker counted it as delivered when it sent it: the message is lost to the app.`)),
      );
      const good = `good-${unique()}`;
      await stompPublish(broker.host, broker.port, `${queue}-auto`, good);
      await app.waitFor(new RegExp(`^PROCESSED ${good}$`, 'm'));
      assert.equal(app.count(new RegExp(`^RECEIVED ${body} `)), 1);
      assert.equal(deadLetters.messages.filter((message) => message.body === body).length, 0, 'nothing was NACKed');
      assert.ok(app.alive);
    });

    it('stops cleanly on SIGTERM afterwards', async () => {
      assert.equal(await app.stop(), 0, app.output);
    });
  });

  describe('RabbitMQ', () => {
    const queue = `/queue/ch-poison-${unique()}`;
    const login = { login: 'guest', passcode: 'guest' };
    let broker: { host: string; port: number };
    let app: PoisonApp;

    before(async () => {
      broker = await sharedRabbitMq();
      app = await PoisonApp.start(broker, login, queue);
    });
    after(async () => {
      await app?.stop();
    });

    it('lives on, logs the failure, NACKs the message, and RabbitMQ delivers it again', async () => {
      const body = `poison-once-${unique()}`;
      await stompPublish(broker.host, broker.port, queue, body, login);
      await app.waitFor(new RegExp(escape(`the onMessage handler of ${queue} threw (cannot process ${body}); the message is NACKed`)));
      await app.waitFor(new RegExp(`^RECEIVED ${body} redelivered=true$`, 'm'));
      await app.waitFor(new RegExp(`^PROCESSED ${body}$`, 'm'));
      assert.ok(app.alive);
    });

    it('does not spin a message that fails on every delivery: one NACK a second, logged once a minute', async () => {
      const body = `poison-always-${unique()}`;
      const loggedBefore = app.count(/threw \(cannot process/);
      await stompPublish(broker.host, broker.port, queue, body, login);
      await app.waitFor(new RegExp(`^RECEIVED ${body} redelivered=true$`, 'm'));
      await sleep(3_000); // RabbitMQ requeues a NACKed message at once
      const deliveries = app.count(new RegExp(`^RECEIVED ${body} `));
      const logged = app.count(/threw \(cannot process/) - loggedBefore;
      assert.ok(deliveries >= 2 && deliveries <= 6, `delivered ${deliveries} times in about 4 s: once a second, not thousands`);
      // The test before logged this subscription's last line less than a minute ago.
      assert.ok(logged <= 1, `${logged} lines for ${deliveries} failures`);
      assert.ok(app.alive);
      assert.equal(await app.stop(), 0, app.output.slice(-2_000));
    });
  });
});
