import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import type { IFrame } from '@stomp/stompjs';
import { ConnectionHealthConfigError } from '../../core/errors/connection-health-config.error.js';
import { OptionChecker } from '../../core/option-checker.js';
import { resolveMonitorOptions } from '../../core/resolve-monitor-options.js';
import { reportToConsole } from '../../core/user-callback.js';
import { createStompAdapter, resolveStompSettings } from './stomp-adapter.factory.js';
import type { StompAdapterOptions } from './stomp-options.js';
import { recordStompSession, stompSession } from './stomp-session.js';

const options = resolveMonitorOptions('mq');
const fast = resolveMonitorOptions('mq', { heartbeat: { intervalMs: 1_000, timeoutMs: 500 } });
const resolve = (definition: StompAdapterOptions, monitor = options) => resolveStompSettings('mq', definition, monitor, new OptionChecker('mq'));

function rejection(definition: object): ConnectionHealthConfigError {
  try {
    resolve(definition as StompAdapterOptions);
  } catch (error) {
    assert.ok(error instanceof ConnectionHealthConfigError, String(error));
    return error;
  }
  assert.fail('expected a configuration error');
}

describe('STOMP adapter options', () => {
  it('resolves host and port, TLS and WebSocket URLs, with targets that never show credentials', () => {
    const plain = resolve({ host: 'broker.internal' });
    assert.deepEqual(plain.endpoint, { transport: 'tcp', host: 'broker.internal', port: 61_613, target: 'stomp://broker.internal:61613', login: undefined, passcode: undefined });
    assert.equal(resolve({ host: 'broker.internal', tls: true }).endpoint.target, 'stomp+ssl://broker.internal:61614');
    assert.equal(resolve({ host: '::1', port: 1234 }).endpoint.target, 'stomp://::1:1234');

    const withLogin = resolve({ url: 'stomp+ssl://ops:s%40cret@10.0.0.5:61612', vhost: '/prod', connectHeaders: { 'client-id': 'a' } });
    assert.equal(withLogin.endpoint.target, 'stomp+ssl://10.0.0.5:61612');
    assert.deepEqual(withLogin.endpoint.tls, {});
    assert.deepEqual(withLogin.connectHeaders, { 'client-id': 'a', login: 'ops', passcode: 's@cret', host: '/prod' });
    assert.equal(resolve({ url: 'stomp://u:p@h', login: 'other' }).connectHeaders.login, 'other', 'explicit options win over the URL');

    const ws = resolve({ url: 'wss://ops:pw@mq.example.com/ws?x=1', tls: { rejectUnauthorized: false } });
    assert.equal(ws.endpoint.transport, 'websocket');
    assert.equal(ws.endpoint.webSocketUrl, 'wss://mq.example.com/ws?x=1');
    assert.equal(ws.endpoint.target, 'wss://mq.example.com/ws');
    assert.deepEqual(ws.endpoint.tls, { rejectUnauthorized: false });
    assert.equal(ws.endpoint.port, 443);
  });

  it('derives the STOMP heart-beats from the heartbeat interval, at most 10 s, and a private probe topic', () => {
    assert.deepEqual(resolve({ host: 'h' }).heartbeat, { outgoingMs: 10_000, incomingMs: 10_000, toleranceMultiplier: 2 });
    assert.deepEqual(resolve({ host: 'h' }, fast).heartbeat, { outgoingMs: 1_000, incomingMs: 1_000, toleranceMultiplier: 2 });
    assert.deepEqual(resolve({ host: 'h', stompHeartbeat: { outgoingMs: 0, toleranceMultiplier: 3 } }, fast).heartbeat, {
      outgoingMs: 0,
      incomingMs: 1_000,
      toleranceMultiplier: 3,
    });
    const probe = resolve({ host: 'h' }).probeDestination;
    assert.match(probe, /^\/topic\/connection-health\.mq\.[0-9a-f]{8}$/);
    assert.notEqual(resolve({ host: 'h' }).probeDestination, probe, 'unique per adapter');
    assert.equal(resolve({ host: 'h', probe: { destination: '/queue/health' } }).probeDestination, '/queue/health');
  });

  it('rejects bad options with the connection, the option, the value and the fix', () => {
    assert.equal(
      rejection({ url: 'amqp://guest:guest@h:5672' }).message,
      'Connection "mq": option "url" is "amqp://h:5672". The scheme amqp: is not known; use stomp://host:61613, stomp+ssl://host:61614, ws://host:15674/ws or wss://....',
    );
    assert.equal(rejection({ url: 'nonsense' }).message.includes('"(not a URL)"'), true);
    assert.equal(rejection({ url: 'stomp://h', host: 'h' }).option, 'host');
    assert.equal(rejection({ url: 'stomp://h', port: 61613 }).option, 'port');
    assert.equal(rejection({ url: 'ws://h/ws', transport: 'tcp' }).option, 'transport');
    assert.equal(rejection({ host: 'h', transport: 'websocket' }).option, 'transport');
    assert.equal(rejection({}).option, 'host');
    assert.equal(rejection({ host: 'h', port: 0 }).option, 'port');
    assert.equal(rejection({ host: 'h', stompHeartbeat: { incomingMs: -1 } }).option, 'stompHeartbeat.incomingMs');
    assert.equal(rejection({ host: 'h', stompHeartbeat: { toleranceMultiplier: 0.5 } }).option, 'stompHeartbeat.toleranceMultiplier');
    assert.equal(rejection({ host: 'h', stompHeartbeat: { incoming: 1000 } }).option, 'stompHeartbeat.incoming');
    assert.equal(rejection({ host: 'h', probe: { destination: '' } }).option, 'probe.destination');
    assert.equal(rejection({ host: 'h', subscriptions: [{ destination: '/queue/a' }] }).option, 'subscriptions[0].onMessage');
    assert.equal(rejection({ host: 'h', subscriptions: [{ destination: '/queue/a', onMessage() {}, headers: { ack: 1 } }] }).option, 'subscriptions[0].headers');
    const passcode = rejection({ host: 'h', passcode: 12345 });
    assert.equal(passcode.option, 'passcode');
    assert.doesNotMatch(passcode.message, /12345/, 'a passcode is never echoed');
    assert.equal(rejection({ host: 'h', allowInsecureAuth: 'yes' }).option, 'allowInsecureAuth');
  });

  it('warns of credentials sent in clear to a host that is not loopback, naming what and the option that silences it', () => {
    const warnings = (definition: StompAdapterOptions) => {
      const check = new OptionChecker('mq');
      resolveStompSettings('mq', definition, options, check);
      return check.warnings;
    };
    assert.deepEqual(warnings({ url: 'stomp://ops:s3cret@broker.internal:61613' }), [
      'Connection "mq": the STOMP login and passcode go to stomp://broker.internal:61613 in clear, without TLS: anyone on the path can ' +
        'read them. Use stomp+ssl:// or wss:// (or tls: true), or set allowInsecureAuth: true if this network is trusted.',
    ]);
    assert.match(warnings({ host: '10.0.0.5', connectHeaders: { Authorization: 'Bearer t0ken', 'client-id': 'a' } })[0] ?? '', /the STOMP Authorization goes to stomp:\/\/10\.0\.0\.5:61613 in clear/);
    assert.match(warnings({ url: 'ws://mq.example.com:15674/ws', passcode: 'pw' })[0] ?? '', /passcode goes to ws:\/\/mq\.example\.com:15674\/ws in clear/);
    assert.match(warnings({ url: 'tcp://u:p@[::1]:61613', allowInsecureAuth: false })[0] ?? '', /allowInsecureAuth: true/, 'false warns on loopback too');
    for (const quiet of [
      { url: 'stomp://u:p@127.0.0.1:61613' },
      { url: 'stomp://u:p@localhost' },
      { host: '::1', login: 'u', passcode: 'p' },
      { url: 'stomp+ssl://u:p@broker.internal' },
      { url: 'wss://u:p@broker.internal/ws' },
      { host: 'broker.internal', tls: true, login: 'u', passcode: 'p' },
      { host: 'broker.internal', connectHeaders: { 'client-id': 'a' } },
      { url: 'stomp://u:p@broker.internal', allowInsecureAuth: true },
    ] satisfies StompAdapterOptions[]) {
      assert.deepEqual(warnings(quiet), [], JSON.stringify(quiet));
    }
  });
});

describe('STOMP session info', () => {
  const frame = (headers: Record<string, string>) => ({ command: 'CONNECTED', headers, body: '', isBinaryBody: false, binaryBody: new Uint8Array() }) as IFrame;

  it('takes the larger period in each direction, and none where either side declines', () => {
    const client = {};
    recordStompSession(client, frame({ version: '1.2', server: 'ActiveMQ/5.17.2', 'heart-beat': '4000,0' }), 1_000, 1_000, 1);
    assert.deepEqual(stompSession(client)?.heartbeat, { outgoingMs: 0, incomingMs: 4_000 });
    assert.equal(stompSession(client)?.brokerHeartBeat, '4000,0');
    recordStompSession(client, frame({ version: '1.0', 'heart-beat': '1000,1000' }), 1_000, 1_000, 2);
    assert.deepEqual(stompSession(client)?.heartbeat, { outgoingMs: 0, incomingMs: 0 }, 'STOMP 1.0 has no heart-beats');
    assert.equal(stompSession({}), undefined);
    assert.equal(stompSession(undefined), undefined);
  });
});

describe('STOMP adapter without a broker', () => {
  it('fails open() with the socket error when nothing listens, and has no client', async () => {
    const server = net.createServer();
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((done) => server.close(done));
    const adapter = createStompAdapter('mq', { host: '127.0.0.1', port }, fast, new OptionChecker('mq'), reportToConsole);
    await assert.rejects(adapter.open(AbortSignal.timeout(2_000)), /ECONNREFUSED/);
    assert.equal(adapter.currentClient?.(), undefined);
    await assert.rejects(adapter.ping(AbortSignal.timeout(100)), /no STOMP session/);
    await adapter.close(AbortSignal.timeout(100));
  });

  it('gives up at the connect deadline when the peer accepts but never answers CONNECT', async () => {
    const sockets = new Set<net.Socket>();
    const closed = new Set<net.Socket>();
    // Reads (and ignores) the CONNECT frame, so it sees the client's FIN.
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined).on('data', () => undefined).on('close', () => closed.add(socket));
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const { port } = server.address() as net.AddressInfo;
    const adapter = createStompAdapter('mq', { host: '127.0.0.1', port }, fast, new OptionChecker('mq'), reportToConsole);
    try {
      const startedAt = Date.now();
      await assert.rejects(adapter.open(AbortSignal.timeout(300)));
      assert.ok(Date.now() - startedAt < 1_000);
      // The abandoned attempt's socket is closed, not left hanging.
      await new Promise((done) => setTimeout(done, 100));
      assert.equal(sockets.size, 1);
      assert.equal(closed.size, 1, 'the attempt closed its socket');
    } finally {
      await adapter.close(AbortSignal.timeout(100));
      for (const socket of sockets) socket.destroy();
      await new Promise((done) => server.close(done));
    }
  });
});
