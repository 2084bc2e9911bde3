/**
 * An app whose configuration needs an optional peer, run by bad-config.e2e-spec.ts from a copy of the build
 * whose node_modules lacks that peer (see PeerlessTree). Argument: the case. It writes one JSON line: the
 * bootstrap error ({ error, message }), or { started: true } when the app came up after all.
 */
import type { ConnectionHealthModuleOptions } from '../../lib/index.js';
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
  metrics: { metrics: {} },
};

const health = CASES[process.argv[2] ?? ''];
if (!health) throw new Error(`unknown case ${process.argv[2]}`);
try {
  const app = await TestApp.start({ health });
  await app.close();
  process.stdout.write(`${JSON.stringify({ started: true })}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: (error as Error).name, message: (error as Error).message })}\n`);
}
