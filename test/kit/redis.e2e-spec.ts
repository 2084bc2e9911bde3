import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { isAlive } from './process.util.js';
import { RedisServer } from './redis.server.js';
import { REDIS_ENV, redisFromEnv, sharedRedis } from './shared-servers.js';

function ms(since: number): number {
  return Math.round(performance.now() - since);
}

/** A raw socket that sent PING and read PONG, and a promise that settles with how the socket ended. */
async function rawClient(server: RedisServer): Promise<{ socket: net.Socket; ended: Promise<string> }> {
  const socket = net.connect({ host: server.host, port: server.port });
  const ended = new Promise<string>((resolve) => {
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code}`));
    socket.on('end', () => resolve('end'));
  });
  await once(socket, 'connect');
  socket.write('PING\r\n');
  const [reply] = (await once(socket, 'data')) as [Buffer];
  assert.equal(reply.toString(), '+PONG\r\n');
  return { socket, ended };
}

describe('RedisServer', () => {
  let server: RedisServer;
  let startMs = 0;

  before(async () => {
    const started = performance.now();
    server = await RedisServer.start();
    startMs = ms(started);
  });
  after(() => server?.stop());

  it('starts on a free port, without persistence, and answers PING', async (t) => {
    t.diagnostic(`config + start + first PONG: ${startMs} ms`);
    assert.ok(isAlive(server.pid));
    assert.equal(server.url, `redis://127.0.0.1:${server.port}`);
    assert.equal(await server.command('PING'), 'PONG');
    assert.deepEqual(await server.command('CONFIG', 'GET', 'save'), ['save', '']);
    assert.deepEqual(await server.command('CONFIG', 'GET', 'appendonly'), ['appendonly', 'no']);
    assert.equal(await server.command('SET', 'k', 'v'), 'OK');
    assert.equal(await server.command('GET', 'k'), 'v');
    assert.equal(await server.command('GET', 'missing'), null);
  });

  it('command() rejects with the server\'s error reply', async () => {
    await assert.rejects(server.command('NOSUCHCOMMAND'), /ERR unknown command/);
  });

  it('clientKill() kicks a connected raw client with a FIN and reports how many it closed', async () => {
    const { ended } = await rawClient(server);
    assert.equal((await server.clients()).length, 1);
    assert.equal(await server.clientKill(), 1);
    assert.equal(await ended, 'end');
    assert.equal((await server.clients()).length, 0);
  });

  it('clientKill() without a filter also kicks a subscriber, which TYPE normal leaves alone', async () => {
    const { socket, ended } = await rawClient(server);
    socket.write('SUBSCRIBE news\r\n');
    await once(socket, 'data');
    assert.equal(await server.clientKill({ type: 'normal' }), 0);
    assert.equal(await server.clientKill(), 1);
    assert.equal(await ended, 'end');
  });

  it('kill() drops clients with a FIN; startAgain() answers on the same port, empty', async (t) => {
    await server.command('SET', 'k', 'v');
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
    assert.equal(await server.command('GET', 'k'), null);
  });

  it('pause() hangs the server: connections are still accepted but nothing answers until resume()', async () => {
    const { socket } = await rawClient(server);
    try {
      server.pause();
      const replies: string[] = [];
      socket.on('data', (chunk: Buffer) => replies.push(chunk.toString()));
      socket.write('PING\r\n');
      const other = net.connect({ host: server.host, port: server.port });
      await once(other, 'connect'); // the kernel completes the handshake into the backlog
      other.destroy();
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(replies, []);
      server.resume();
      await once(socket, 'data');
      assert.deepEqual(replies, ['+PONG\r\n']);
    } finally {
      server.resume();
      socket.destroy();
    }
  });

  it('restart() kills and starts again on the same port', async () => {
    const { ended } = await rawClient(server);
    const pid = server.pid;
    await server.restart();
    assert.equal(await ended, 'end');
    assert.notEqual(server.pid, pid);
    assert.equal(await server.command('PING'), 'PONG');
  });

  it('attach() kills and starts again a server it did not start, and cannot stop it', async () => {
    const handle = RedisServer.attach(server.location);
    await handle.kill();
    assert.equal(server.isRunning(), false);
    await handle.startAgain();
    await handle.stop();
    assert.equal(await server.command('PING'), 'PONG');
  });

  it('stop() removes the process and the folder, is idempotent, and leaves nothing to attach to', async () => {
    const other = await RedisServer.start();
    const pid = other.pid;
    await other.stop();
    await other.stop();
    assert.equal(isAlive(pid), false);
    assert.equal(existsSync(other.dir), false);
    assert.throws(() => RedisServer.attach(other.location), /was the server that owned it stopped already/);
  });
});

describe('RedisServer with a password', () => {
  let server: RedisServer;
  before(async () => (server = await RedisServer.start({ password: 'se cr"et' })));
  after(() => server?.stop());

  it('refuses commands before AUTH and accepts the password (command() sends it)', async () => {
    assert.equal(server.url, `redis://:se%20cr%22et@127.0.0.1:${server.port}`);
    assert.equal(await server.command('PING'), 'PONG');
    const socket = net.connect({ host: server.host, port: server.port });
    await once(socket, 'connect');
    socket.write('PING\r\n');
    const [reply] = (await once(socket, 'data')) as [Buffer];
    socket.destroy();
    assert.match(reply.toString(), /^-NOAUTH/);
    await assert.rejects(RedisServer.attach({ ...server.location, password: 'wrong' }).command('PING'), /WRONGPASS/);
  });
});

describe('sharedRedis()', () => {
  it('attaches to the server that env describes, else starts a private one', async () => {
    const server = await sharedRedis();
    assert.equal(await server.command('PING'), 'PONG');
    const fromEnv = redisFromEnv({ [REDIS_ENV.host]: server.host, [REDIS_ENV.port]: String(server.port), [REDIS_ENV.dir]: server.dir });
    assert.equal(fromEnv?.pid, server.pid);
    assert.equal(redisFromEnv({}), undefined);
  });
});
