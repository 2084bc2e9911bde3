import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { connect, Events, StringCodec, type NatsConnection, type Status } from 'nats';
import { NatsServer } from './nats.server.js';
import { isAlive } from './process.util.js';
import { NATS_ENV, natsFromEnv, sharedNats } from './shared-servers.js';

const codec = StringCodec();

/**
 * Reconnects soon after a kick. A redial may land inside the kick's revoke window (a client whose last dial
 * is older than reconnectTimeWait dials at once): without ignoreAuthErrorAbort, nats.js would give up on
 * that second Authorization Violation.
 */
const QUICK_RECONNECT = { reconnectTimeWait: 200, ignoreAuthErrorAbort: true } as const;

function ms(since: number): number {
  return Math.round(performance.now() - since);
}

/** A raw socket that read the server's INFO, and a promise that settles with how the socket ended. */
async function rawClient(server: NatsServer): Promise<{ socket: net.Socket; ended: Promise<string>; received: () => string }> {
  const socket = net.connect({ host: server.host, port: server.port });
  let received = '';
  const ended = new Promise<string>((resolve) => {
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code}`));
    socket.on('end', () => resolve('end'));
  });
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  await once(socket, 'connect');
  // protocol 1: the client takes asynchronous INFO, which the server needs to tell it of lame duck mode.
  socket.write('CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n');
  while (!received.includes('PONG\r\n')) await once(socket, 'data');
  return { socket, ended, received: () => received };
}

/** The client's status events, collected as they come, until it is closed. */
function statusLog(connection: NatsConnection): Status[] {
  const seen: Status[] = [];
  void (async () => {
    for await (const status of connection.status()) seen.push(status);
  })();
  return seen;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('NatsServer', () => {
  let server: NatsServer;
  let startMs = 0;

  before(async () => {
    const started = performance.now();
    server = await NatsServer.start();
    startMs = ms(started);
  });
  after(() => server?.stop());

  it('starts on free ports and answers PING, /healthz and /varz', async (t) => {
    t.diagnostic(`config + start + first PONG: ${startMs} ms`);
    assert.ok(isAlive(server.pid));
    assert.notEqual(server.port, server.httpPort);
    assert.equal(server.url, `nats://127.0.0.1:${server.port}`);
    const info = await server.ping();
    assert.equal(info.version, '2.9.10');
    assert.deepEqual(await server.monitor('/healthz'), { status: 'ok' });
    assert.equal(((await server.monitor('/varz')) as { port: number }).port, server.port);
    assert.deepEqual(await server.connections(), []);
  });

  it('a `nats` client connects, subscribes, publishes and gets a request answered', async () => {
    const client = await connect({ servers: server.url, name: 'kit-test' });
    try {
      const subscription = client.subscribe('kit.news');
      const responder = client.subscribe('kit.echo', { callback: (_error, message) => message.respond(codec.encode(`echo ${codec.decode(message.data)}`)) });
      await client.flush();
      client.publish('kit.news', codec.encode('hello'));
      const reply = await client.request('kit.echo', codec.encode('ping'), { timeout: 2_000 });
      assert.equal(codec.decode(reply.data), 'echo ping');
      for await (const message of subscription) {
        assert.equal(codec.decode(message.data), 'hello');
        break;
      }
      const [listed] = await server.connections();
      assert.equal(listed?.name, 'kit-test');
      assert.equal(listed?.lang, 'nats.js');
      responder.unsubscribe();
    } finally {
      await client.close();
    }
  });

  it('kick() closes every client with a FIN and gives the credentials back at once', async () => {
    const { ended } = await rawClient(server);
    const client = await connect({ servers: server.url, ...QUICK_RECONNECT });
    const events = statusLog(client);
    try {
      assert.equal((await server.connections()).length, 2);
      assert.equal(await server.kick(), 2);
      assert.equal(await ended, 'end');
      await waitFor('the client to reconnect', () => events.some((status) => status.type === Events.Reconnect));
      assert.deepEqual(events.filter((status) => status.type === Events.Disconnect || status.type === Events.Reconnect).map((status) => status.type), [Events.Disconnect, Events.Reconnect]);
      await client.flush();
      assert.equal((await server.ping()).version, '2.9.10');
    } finally {
      await client.close();
    }
  });

  it('kill() drops clients with a FIN; startAgain() answers on the same ports', async (t) => {
    const { ended } = await rawClient(server);
    const pid = server.pid;
    await server.kill();
    assert.equal(isAlive(pid), false);
    assert.equal(server.isRunning(), false);
    assert.equal(await ended, 'end');
    const started = performance.now();
    await server.startAgain();
    t.diagnostic(`start again after kill -9: ${ms(started)} ms`);
    assert.notEqual(server.pid, pid);
    assert.deepEqual(await server.monitor('/healthz'), { status: 'ok' });
  });

  it('lameDuck() tells clients (INFO ldm), closes them, exits; startAgain() brings it back', async () => {
    const { ended, received } = await rawClient(server);
    const pid = server.pid;
    await server.lameDuck();
    assert.equal(isAlive(pid), false);
    assert.equal(await ended, 'end');
    assert.match(received(), /INFO \{[^\r]*"ldm":true/);
    await server.startAgain();
    await server.ping();
  });

  it('pause() hangs the server: connections are accepted but nothing answers until resume()', async () => {
    const { socket, received } = await rawClient(server);
    try {
      await server.pause();
      const before = received().length;
      socket.write('PING\r\n');
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Not "nothing at all": a PING the server sent just before it stopped (it pings a new client early) may still arrive.
      assert.equal(received().slice(before).includes('PONG'), false);
      server.resume();
      await waitFor('PONG after resume', () => received().slice(before).includes('PONG'));
    } finally {
      server.resume();
      socket.destroy();
    }
  });

  it('attach() kills and starts again a server it did not start, and cannot stop it', async () => {
    const handle = NatsServer.attach(server.location);
    await handle.kill();
    assert.equal(server.isRunning(), false);
    await handle.startAgain();
    await handle.stop();
    await server.ping();
  });

  it('stop() removes the process and the folder, and is idempotent', async () => {
    const other = await NatsServer.start();
    const pid = other.pid;
    await other.stop();
    await other.stop();
    assert.equal(isAlive(pid), false);
    assert.equal(existsSync(other.dir), false);
  });
});

describe('NatsServer with users and passwords', () => {
  let server: NatsServer;
  before(async () => (server = await NatsServer.start({ auth: { users: { app: 'se cr"et', other: 'pw' } } })));
  after(() => server?.stop());

  it('refuses a wrong password and accepts the right one (ping() sends the first user\'s)', async () => {
    await server.ping();
    await assert.rejects(connect({ servers: server.url, user: 'app', pass: 'wrong' }), /AUTHORIZATION_VIOLATION|Authorization Violation/i);
    await assert.rejects(NatsServer.attach({ ...server.location, auth: { users: { app: 'wrong' } } }).ping(), /Authorization Violation/);
    const client = await connect({ servers: server.url, user: 'app', pass: 'se cr"et' });
    await client.flush();
    assert.equal((await server.connections())[0]?.authorized_user, 'app');
    await client.close();
  });

  it('kick(user) closes that user\'s connections only', async () => {
    const app = await connect({ servers: server.url, user: 'app', pass: 'se cr"et', ...QUICK_RECONNECT });
    const other = await connect({ servers: server.url, user: 'other', pass: 'pw' });
    const appEvents = statusLog(app);
    const otherEvents = statusLog(other);
    try {
      assert.equal(await server.kick('app'), 1);
      await waitFor('app to reconnect', () => appEvents.some((status) => status.type === Events.Reconnect));
      await app.flush();
      await other.flush();
      assert.deepEqual(otherEvents, []);
      await assert.rejects(server.kick('nobody'), /no such user/);
    } finally {
      await Promise.all([app.close(), other.close()]);
    }
  });
});

describe('NatsServer with a token', () => {
  it('refuses a client without the token and accepts it with the token', async () => {
    const server = await NatsServer.start({ auth: { token: 's3cret' } });
    try {
      await assert.rejects(connect({ servers: server.url }), /AUTHORIZATION_VIOLATION|Authorization Violation/i);
      const client = await connect({ servers: server.url, token: 's3cret' });
      await client.flush();
      await client.close();
    } finally {
      await server.stop();
    }
  });
});

describe('sharedNats()', () => {
  it('attaches to the server that env describes, else starts a private one', async () => {
    const server = await sharedNats();
    await server.ping();
    const fromEnv = natsFromEnv({ [NATS_ENV.host]: server.host, [NATS_ENV.port]: String(server.port), [NATS_ENV.httpPort]: String(server.httpPort), [NATS_ENV.dir]: server.dir });
    assert.equal(fromEnv?.pid, server.pid);
    assert.equal(natsFromEnv({}), undefined);
  });
});
