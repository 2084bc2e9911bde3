/**
 * An app whose configuration needs an optional peer, run by bad-config.e2e-spec.ts from a copy of the build
 * whose node_modules lacks that peer (see PeerlessTree). Argument: the case. It writes one JSON line: the
 * bootstrap error ({ error, message }), or { started: true } when the app came up after all ({ started: true,
 * up: true } for a case with a real server, once its connection read up).
 */
import type { ConnectionHealthModuleOptions } from '../../lib/index.js';
import { NatsServer } from './nats.server.js';
import { TestApp } from './test-app.js';

const imap = { name: 'mail', kind: 'imap', host: '127.0.0.1', port: 1, auth: { user: 'ops', pass: 'secret' } } as const;
const CASES: Record<string, ConnectionHealthModuleOptions> = {
  'node-imap': { connections: [{ ...imap, client: 'node-imap' }] },
  imapflow: { connections: [{ ...imap, client: 'imapflow' }] },
  stomp: { connections: [{ name: 'broker', kind: 'stomp', host: '127.0.0.1', port: 1 }] },
  'stomp-websocket': { connections: [{ name: 'broker', kind: 'stomp', url: 'ws://127.0.0.1:1/ws' }] },
  redis: { connections: [{ name: 'cache', kind: 'redis', url: 'redis://127.0.0.1:1' }] },
  amqp: { connections: [{ name: 'orders', kind: 'amqp', url: 'amqp://127.0.0.1:1' }] },
  mqtt: { connections: [{ name: 'devices', kind: 'mqtt', url: 'mqtt://127.0.0.1:1' }] },
  nats: { connections: [{ name: 'events', kind: 'nats', servers: 'nats://127.0.0.1:1' }] },
  // Nest 12's ClientNats holds such a connection, in an app that has no nats 2.x.
  'nats-3x-connection': { connections: [] },
  metrics: { metrics: {} },
  openTelemetry: { openTelemetry: true },
};

const which = process.argv[2] ?? '';
const health = CASES[which];
if (!health) throw new Error(`unknown case ${which}`);
const server = which === 'nats-3x-connection' ? await NatsServer.start() : undefined;
try {
  const connection = server && (await (await import('@nats-io/transport-node')).connect({ servers: server.url }));
  if (connection) health.connections = [{ name: 'events', kind: 'nats', connection }];
  try {
    const app = await TestApp.start({ health });
    if (connection) await app.waitForState('events', 'up', 10_000);
    await app.close();
    await connection?.close();
    process.stdout.write(`${JSON.stringify({ started: true, ...(connection ? { up: true } : {}) })}\n`);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ error: (error as Error).name, message: (error as Error).message })}\n`);
  }
} finally {
  await server?.stop();
}
