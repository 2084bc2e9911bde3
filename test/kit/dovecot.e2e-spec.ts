import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { DovecotServer } from './dovecot.server.js';
import { childrenOf, waitUntilDead } from './process.util.js';
import { IMAP_ENV } from './shared-servers.js';

/** A logged-in IMAP session over a bare socket: what it received so far, and how it ended. */
interface RawSession {
  socket: net.Socket;
  received(): string;
  send(line: string): void;
  /** Resolves with 'end' (FIN) or the error code once the connection is gone. */
  ended: Promise<string>;
}

async function rawSession(server: DovecotServer): Promise<RawSession> {
  const socket = net.connect({ host: server.host, port: server.port });
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  const ended = new Promise<string>((resolve) => {
    socket.on('end', () => resolve('end'));
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
  const session: RawSession = { socket, received: () => text, send: (line) => socket.write(`${line}\r\n`), ended };
  await until(() => text.includes('* OK'));
  session.send(`a LOGIN ${DovecotServer.user} ${DovecotServer.password}`);
  await until(() => /^a OK/m.test(text));
  return session;
}

/** The server's first line on a fresh connection (its capabilities are in it); hangs up after. */
async function greeting(socket: net.Socket): Promise<string> {
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.on('error', () => undefined);
  try {
    await until(() => text.includes('\r\n'));
    return text.slice(0, text.indexOf('\r\n'));
  } finally {
    socket.destroy();
  }
}

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `condition still false after ${timeoutMs} ms: ${condition}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('DovecotServer', () => {
  let server: DovecotServer;
  before(async () => (server = await DovecotServer.start()));
  after(() => server?.stop());

  it('greets, logs a user in and lists the session with who()', async (t) => {
    const session = await rawSession(server);
    const [listed] = await server.who(DovecotServer.user);
    t.diagnostic(`who: ${JSON.stringify(listed)}`);
    assert.equal(listed?.ip, '127.0.0.1');
    session.socket.destroy();
  });

  it('transcripts() shows what a session sent and heard, with timestamps, while it is open', async () => {
    const startedAt = Date.now();
    const session = await rawSession(server);
    session.send('b NOOP');
    await until(() => /^b OK/m.test(session.received()));
    const [transcript] = server.transcripts(startedAt);
    const noop = transcript?.commands.find((c) => c.line === 'b NOOP');
    assert.ok(noop, JSON.stringify(transcript));
    assert.ok(Math.abs(noop.at - Date.now()) < 2_000, 'stamped in epoch milliseconds');
    assert.ok(transcript.responses.some((r) => r.line.startsWith('b OK')));
    assert.ok(!transcript.commands.some((c) => /LOGIN/i.test(c.line)), 'the login never reaches the rawlog');
    session.socket.destroy();
  });

  it('kick() sends * BYE, then FIN', async () => {
    const session = await rawSession(server);
    assert.equal(await server.kick(), 1);
    assert.equal(await session.ended, 'end');
    assert.match(session.received(), /^\* BYE /m);
  });

  it('kill() ends the user’s imap process with a FIN and no BYE; the server stays up', async () => {
    const session = await rawSession(server);
    assert.equal((await server.kill()).length, 1);
    assert.equal(await session.ended, 'end');
    assert.doesNotMatch(session.received(), /\* BYE/);
    await rawSession(server).then((next) => next.socket.destroy());
  });

  it('killServer() refuses new connections until startAgain(); an attached handle does both', async () => {
    const attached = DovecotServer.attach(server.location);
    const session = await rawSession(server);
    await attached.killServer();
    assert.equal(await session.ended, 'end');
    assert.equal(server.isRunning(), false);
    const refused = await new Promise<string>((resolve) => {
      const probe = net.connect({ host: server.host, port: server.port });
      probe.on('connect', () => resolve('connected')).on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? ''));
      probe.on('connect', () => probe.destroy());
    });
    assert.equal(refused, 'ECONNREFUSED');
    await attached.startAgain();
    await attached.stop(); // not its server: does nothing
    assert.equal(server.isRunning(), true);
    await rawSession(server).then((next) => next.socket.destroy());
  });

  it('serves no TLS by default; with tls, STARTTLS (offered, not demanded) and IMAPS under a certificate of its own', async () => {
    assert.doesNotMatch(await greeting(net.connect({ host: server.host, port: server.port })), /STARTTLS/);
    const secure = await DovecotServer.start({ tls: true });
    try {
      const offered = await greeting(net.connect({ host: secure.host, port: secure.port }));
      assert.match(offered, /\bSTARTTLS\b/);
      assert.doesNotMatch(offered, /LOGINDISABLED/, 'a client must upgrade on its own');
      const socket = tls.connect({ host: secure.host, port: secure.tlsPort, ca: secure.certificate });
      assert.match(await greeting(socket), /^\* OK /);
      assert.equal(socket.authorized, true, 'verified against the certificate it made');
      assert.throws(() => server.certificate, /serves no TLS/);
    } finally {
      await secure.stop();
    }
  });

  it('stop() removes every process and the folder, and is idempotent', async () => {
    const own = await DovecotServer.start();
    const pids = [own.pid, ...childrenOf(own.pid)];
    await own.stop();
    await own.stop();
    await waitUntilDead(pids, 2_000);
    assert.equal(existsSync(own.dir), false);
  });

  it('sharedDovecot() without env starts a private server that is removed at process exit', async () => {
    const kit = new URL('./shared-servers.js', import.meta.url).href;
    const env = { ...process.env };
    for (const name of [...Object.values(IMAP_ENV), 'NODE_TEST_CONTEXT']) delete env[name];
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { sharedDovecot } from ${JSON.stringify(kit)};
         const server = await sharedDovecot();
         const same = server === (await sharedDovecot());
         console.log(JSON.stringify({ dir: server.dir, pid: server.pid, same }));`,
      ],
      { env, timeout: 60_000 },
    );
    const child = JSON.parse(stdout) as { dir: string; pid: number; same: boolean };
    assert.equal(child.same, true);
    await waitUntilDead([child.pid], 2_000);
    assert.equal(existsSync(child.dir), false);
  });
});
