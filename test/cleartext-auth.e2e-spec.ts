import assert from 'node:assert/strict';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { LoggerService } from '@nestjs/common';
import type Imap from 'imap';
import type { ImapFlow } from 'imapflow';
import type { ImapConnectionDefinition, StompConnectionDefinition } from '../lib/index.js';
import type { ActiveMqServer } from './kit/activemq.server.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { DovecotServer } from './kit/dovecot.server.js';
import type { RabbitMqServer } from './kit/rabbitmq.server.js';
import { sharedActiveMq, sharedDovecot, sharedRabbitMq, sharedTlsDovecot } from './kit/shared-servers.js';
import { TestApp } from './kit/test-app.js';
import { RecordingLogger } from './kit/recording-logger.js';

// No password crosses the network in clear unless the configuration says so (issue 12, point 4).

const timing = {
  heartbeat: { intervalMs: 1_000, timeoutMs: 500, connectTimeoutMs: 2_000 },
  reconnect: { initialDelayMs: 200, maxDelayMs: 1_000, maxAttempts: Infinity },
};
const login = { user: DovecotServer.user, pass: DovecotServer.password };
/** What a client sends when it gives its password: a tagged LOGIN, or AUTHENTICATE (PLAIN with SASL-IR). */
const CREDENTIALS_SENT = /^\S+ (?:LOGIN|AUTHENTICATE)\b/im;

/**
 * An address of this machine that is not loopback: a host there counts as remote, so the package's
 * defaults apply in full, while the traffic still stays on the machine.
 */
function remoteAddress(): string {
  const found = Object.values(os.networkInterfaces())
    .flat()
    .find((address) => address && !address.internal && address.family === 'IPv4');
  assert.ok(found, 'this machine needs a non-loopback IPv4 address (os.networkInterfaces()) for these tests');
  return found.address;
}

type Library = 'imapflow' | 'node-imap';

function imap(library: Library, endpoint: object): ImapConnectionDefinition {
  return { name: 'mail', kind: 'imap', client: library, auth: login, ...timing, ...endpoint } as ImapConnectionDefinition;
}

/** Whether the live client's socket is TLS (from the first byte or after STARTTLS). */
function encrypted(app: TestApp, library: Library): boolean {
  const handle = app.registry.get('mail');
  if (library === 'imapflow') return handle.client<ImapFlow>()?.secureConnection === true;
  return (handle.client<Imap>() as unknown as { _sock?: { encrypted?: boolean } })?._sock?.encrypted === true;
}

/** Runs `body` with an app that monitors `definition`, and closes the app whatever happens. */
async function withApp<T>(definition: ImapConnectionDefinition | StompConnectionDefinition, body: (app: TestApp) => Promise<T>, logger?: LoggerService): Promise<T> {
  const app = await TestApp.start({ health: { connections: [definition] }, logger });
  try {
    return await body(app);
  } finally {
    await app.close();
  }
}

/** Runs `body` with a proxy, and closes the proxy whatever happens (an app that failed to start included). */
async function withProxy<T>(proxy: ChaosProxy, body: (proxy: ChaosProxy) => Promise<T>): Promise<T> {
  try {
    return await body(proxy);
  } finally {
    await proxy.close();
  }
}

/** The lines dovecot logged after `mark` (a length of its log read earlier). */
const logSince = (server: DovecotServer, mark: number) => server.log().slice(mark);

for (const library of ['imapflow', 'node-imap'] as const) {
  describe(`IMAP through ${library}: TLS before the password`, () => {
    let cleartext: DovecotServer;
    let secure: DovecotServer;
    before(async () => {
      [cleartext, secure] = await Promise.all([sharedDovecot(), sharedTlsDovecot()]);
    });

    /**
     * Starts the connection through a recording proxy in front of the server without TLS, waits for it to
     * be refused, and proves on the wire and in dovecot's log that no password was sent.
     */
    async function expectRefused(t: TestContext, proxyHost: string, extra: object): Promise<void> {
      const mark = cleartext.log().length;
      const proxy = await ChaosProxy.start(cleartext.host, cleartext.port, { host: proxyHost, record: true });
      const snapshot = await withProxy(proxy, () =>
        withApp(imap(library, { host: proxy.host, port: proxy.port, ...extra }), async (app) => {
          // Settled either way: refused and retrying, or (before issue 12) logged in.
          const settled = await app.waitFor('mail', (s) => s.state === 'up' || s.reconnectAttempts >= 1, 10_000);
          assert.equal((await app.health()).status, settled.state === 'up' ? 200 : 503);
          return settled;
        }),
      );
      const wire = proxy.clientBytes();
      assert.match(wire, /^\S+ (?:CAPABILITY|ID)\b/m, 'the client did talk to the server (imapflow reads the capabilities from the greeting)');
      assert.doesNotMatch(wire, CREDENTIALS_SENT, `no LOGIN or AUTHENTICATE may cross the wire; it saw:\n${wire}`);
      assert.ok(!wire.includes(Buffer.from(`\0${login.user}\0${login.pass}`).toString('base64')), 'nor the SASL PLAIN response');
      // dovecot writes it through its log process: on a busy machine it may come a moment after the close.
      const deadline = Date.now() + 5_000;
      while (!/no auth attempts/.test(logSince(cleartext, mark)) && Date.now() < deadline) await sleep(50);
      const log = logSince(cleartext, mark);
      assert.match(log, /no auth attempts/, log);
      assert.doesNotMatch(log, /Login: user=|auth failed|Aborted login \(\d+ auth/, log);
      t.diagnostic(`refused: ${snapshot.reason}`);
      assert.equal(snapshot.state, 'down');
      assert.match(snapshot.reason, /offers no STARTTLS, so the password was not sent/);
      assert.match(snapshot.reason, /allowInsecureAuth: true/);
    }

    it('refuses a remote server without STARTTLS before the password is sent (the default)', async (t) => {
      await expectRefused(t, remoteAddress(), {});
    });

    it('refuses it on loopback too with allowInsecureAuth: false', async (t) => {
      await expectRefused(t, '127.0.0.1', { allowInsecureAuth: false });
    });

    it('upgrades a cleartext port with STARTTLS before the login, trusting the CA given in tls.ca', async (t) => {
      const mark = secure.log().length;
      // 127.0.0.1, which the kit's certificate names, through a recording proxy; false so the rule is enforced there.
      const proxy = await ChaosProxy.start(secure.host, secure.port, { record: true });
      const upgrade = { host: '127.0.0.1', port: proxy.port, allowInsecureAuth: false, tls: { ca: secure.certificate } };
      await withProxy(proxy, () =>
        withApp(imap(library, upgrade), async (app) => {
          await app.waitForState('mail', 'up', 10_000);
          assert.equal(encrypted(app, library), true, 'the live session runs over TLS');
        }),
      );
      const wire = proxy.clientBytes();
      assert.match(wire, /^\S+ STARTTLS\r\n/m);
      assert.doesNotMatch(wire, CREDENTIALS_SENT, 'the login went inside TLS');
      const logins = logSince(secure, mark).split('\n').filter((line) => line.includes('Login: user=<test>'));
      t.diagnostic(`dovecot: ${logins[0]}`);
      assert.ok(logins.length >= 1 && logins.every((line) => / TLS,/.test(line)), logins.join('\n'));

      // Without the CA, the certificate is not trusted: the upgrade fails, and the password stays home.
      await withApp(imap(library, { host: secure.host, port: secure.port, allowInsecureAuth: false }), async (app) => {
        const snapshot = await app.waitFor('mail', (s) => s.state === 'down' && s.reconnectAttempts >= 1, 10_000);
        t.diagnostic(`without the CA: ${snapshot.reason}`);
        assert.match(snapshot.reason, /self[- ]signed certificate/i);
      });
    });

    it('speaks TLS from the first byte on 993 when neither port nor secure is given', async (t) => {
      const mark = secure.log().length;
      // The kit's TLS server takes 993 on a loopback address of its own when it runs as root; else its port needs saying.
      const endpoint = secure.tlsPort === 993 ? {} : { port: secure.tlsPort, secure: true };
      t.diagnostic(`IMAPS at ${secure.host}:${secure.tlsPort}`);
      await withApp(imap(library, { host: secure.host, ...endpoint, tls: { ca: secure.certificate } }), async (app) => {
        await app.waitForState('mail', 'up', 10_000);
        assert.equal(app.snapshot('mail').target, `${library} ${secure.host}:${secure.tlsPort}`);
        assert.equal(encrypted(app, library), true);
      });
      assert.match(logSince(secure, mark), /Login: user=<test>.* TLS,/);
    });

    it('logs in over cleartext to a remote host with allowInsecureAuth: true', async () => {
      const proxy = await ChaosProxy.start(cleartext.host, cleartext.port, { host: remoteAddress(), record: true });
      await withProxy(proxy, () =>
        withApp(imap(library, { host: proxy.host, port: proxy.port, allowInsecureAuth: true }), async (app) => {
          await app.waitForState('mail', 'up', 10_000);
          assert.equal(encrypted(app, library), false);
        }),
      );
      assert.match(proxy.clientBytes(), CREDENTIALS_SENT, 'the login went in clear, as allowed');
    });

    it('logs in over cleartext on loopback when allowInsecureAuth is left out', async () => {
      assert.equal(cleartext.host, '127.0.0.1');
      await withApp(imap(library, { host: cleartext.host, port: cleartext.port }), async (app) => {
        await app.waitForState('mail', 'up', 10_000);
        assert.equal(encrypted(app, library), false);
      });
    });
  });
}

describe('STOMP credentials without TLS: one warning at bootstrap', () => {
  let broker: ActiveMqServer;
  let rabbit: RabbitMqServer;
  let proxy: ChaosProxy;
  let tlsProxy: ChaosProxy;
  before(async () => {
    [broker, rabbit] = await Promise.all([sharedActiveMq(), sharedRabbitMq()]);
    // The brokers listen on 127.0.0.1; the proxies make them reachable at an address that is not loopback.
    proxy = await ChaosProxy.start(broker.host, broker.port, { host: remoteAddress() });
    tlsProxy = await ChaosProxy.start(rabbit.host, rabbit.tlsPort, { host: remoteAddress() });
  });
  after(async () => {
    await proxy?.close();
    await tlsProxy?.close();
  });

  const stomp = (extra: object) => ({ name: 'mq', kind: 'stomp', ...timing, ...extra }) as StompConnectionDefinition;

  /** Boots an app with the connection, waits until it is up, and returns the package's warnings. */
  async function warnings(definition: StompConnectionDefinition): Promise<Array<{ message: string; context?: string }>> {
    const logger = new RecordingLogger();
    await withApp(definition, (app) => app.waitForState('mq', 'up', 10_000), logger);
    return logger.lines.filter((line) => line.level === 'warn' && line.message.includes('STOMP')).map(({ message, context }) => ({ message, context }));
  }

  it('names the connection, the credentials, the broker and the option that silences it, for a remote broker', async (t) => {
    const lines = await warnings(stomp({ url: `stomp://ops:s3cr3t-pass@${proxy.host}:${proxy.port}` }));
    t.diagnostic(lines[0]?.message ?? '(none)');
    assert.deepEqual(lines, [
      {
        message:
          `Connection "mq": the STOMP login and passcode go to stomp://${proxy.host}:${proxy.port} in clear, without TLS: anyone on ` +
          'the path can read them. Use stomp+ssl:// or wss:// (or tls: true), or set allowInsecureAuth: true if this network is trusted.',
        context: 'ConnectionHealth',
      },
    ]);
    assert.doesNotMatch(JSON.stringify(lines), /s3cr3t-pass/);
  });

  it('says nothing over TLS, with allowInsecureAuth: true, on loopback, or without credentials', async () => {
    // The broker's certificate names localhost and 127.0.0.1, not the remote address: servername says which.
    const overTls = { url: `stomp+ssl://guest:guest@${tlsProxy.host}:${tlsProxy.port}`, tls: { ca: rabbit.certificate, servername: 'localhost' } };
    assert.deepEqual(await warnings(stomp(overTls)), []);
    assert.deepEqual(await warnings(stomp({ url: `stomp://ops:s3cr3t-pass@${proxy.host}:${proxy.port}`, allowInsecureAuth: true })), []);
    assert.deepEqual(await warnings(stomp({ url: `stomp://ops:s3cr3t-pass@${broker.host}:${broker.port}` })), []);
    assert.deepEqual(await warnings(stomp({ host: proxy.host, port: proxy.port })), []);
  });
});
