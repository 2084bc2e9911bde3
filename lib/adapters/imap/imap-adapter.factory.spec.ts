import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemClock } from '../../core/clock.js';
import { ConnectionHealthConfigError } from '../../core/errors/connection-health-config.error.js';
import { MissingDependencyError } from '../../core/errors/missing-dependency.error.js';
import { OptionChecker } from '../../core/option-checker.js';
import { resolveMonitorOptions } from '../../core/resolve-monitor-options.js';
import { createImapAdapter } from './imap-adapter.factory.js';
import type { ImapAdapterOptions } from './imap-adapter.options.js';
import { imapTransport } from './imap-transport.js';
import { ImapFlowAdapter } from './imapflow.adapter.js';
import { NodeImapAdapter } from './node-imap.adapter.js';

const options = resolveMonitorOptions('mail');
const server = { host: 'imap.example.com', auth: { user: 'ops', pass: 's3cr3t' } };
const build = (definition: ImapAdapterOptions) => createImapAdapter(definition, options, new OptionChecker('mail'), systemClock);

function rejection(definition: object): ConnectionHealthConfigError {
  try {
    build(definition as ImapAdapterOptions);
  } catch (error) {
    assert.ok(error instanceof ConnectionHealthConfigError);
    return error;
  }
  assert.fail('expected a configuration error');
}

describe('IMAP adapters', () => {
  it('builds the adapter of the chosen library, named after where it points', () => {
    const flow = build({ client: 'imapflow', ...server, port: 993 });
    assert.ok(flow instanceof ImapFlowAdapter);
    assert.equal(flow.kind, 'imap');
    assert.equal(flow.target, 'imapflow imap.example.com:993');
    const imap = build({ client: 'node-imap', ...server });
    assert.ok(imap instanceof NodeImapAdapter);
    assert.equal(imap.target, 'node-imap imap.example.com:993', 'IMAPS unless told otherwise');
    assert.equal(build({ client: 'node-imap', ...server, secure: false }).target, 'node-imap imap.example.com:143');
    assert.equal(build({ client: 'imapflow', factory: () => ({}) as never }).target, 'imapflow');
    assert.equal(flow.currentClient?.(), undefined, 'no client before the first session');
  });

  it('rejects bad options with the connection, the option, the value and the fix', () => {
    assert.equal(
      rejection({ client: 'imap', ...server }).message,
      'Connection "mail": option "client" is "imap". Use one of "imapflow", "node-imap".',
    );
    assert.equal(
      rejection({ client: 'imapflow', factory: () => undefined, host: 'imap.example.com' }).message,
      'Connection "mail": option "host" is "imap.example.com". ' +
        "Leave it out when you pass a factory: the factory's clients carry their own server, login and TLS settings.",
    );
    assert.equal(rejection({ client: 'imapflow', factory: () => undefined, allowInsecureAuth: true }).option, 'allowInsecureAuth');
    assert.equal(rejection({ client: 'imapflow', factory: () => undefined, tls: {} }).option, 'tls');
    assert.equal(rejection({ client: 'node-imap', ...server, allowInsecureAuth: 'yes' }).option, 'allowInsecureAuth');
    assert.equal(
      rejection({ client: 'node-imap', ...server, tls: true }).message,
      'Connection "mail": option "tls" is true. Use an object of node:tls options (ca, servername, rejectUnauthorized, ...), or leave it out.',
    );
    assert.equal(
      rejection({ client: 'imapflow', host: 'imap.example.com' }).message,
      'Connection "mail": option "auth" is undefined. Pass { user, pass }, or a factory that builds the ImapFlow client itself.',
    );
    assert.equal(rejection({ client: 'node-imap', ...server, port: 70_000 }).option, 'port');
    assert.equal(rejection({ client: 'node-imap', ...server, mailbox: '' }).option, 'mailbox');
    const pass = rejection({ client: 'node-imap', ...server, auth: { user: 'ops', pass: 42 } });
    assert.equal(pass.option, 'auth.pass');
    assert.doesNotMatch(pass.message, /42/, 'a password is never echoed');
    assert.equal(
      rejection({ client: 'imapflow', ...server, maxSessionMs: 20_000 }).message,
      'Connection "mail": option "maxSessionMs" is 20000. It must exceed heartbeat.intervalMs (30000), ' +
        'since the lifetime is checked at each heartbeat; raise it or leave it out.',
    );
  });

  it('uses TLS unless told otherwise, and requires STARTTLS before a cleartext login except on loopback', () => {
    const remote = { host: 'imap.example.com' };
    assert.deepEqual(imapTransport(remote), { port: 993, secure: true, startTlsRequired: false });
    assert.deepEqual(imapTransport({ ...remote, port: 993 }), { port: 993, secure: true, startTlsRequired: false });
    assert.deepEqual(imapTransport({ ...remote, secure: false }), { port: 143, secure: false, startTlsRequired: true });
    assert.deepEqual(imapTransport({ ...remote, port: 143 }), { port: 143, secure: false, startTlsRequired: true });
    assert.deepEqual(imapTransport({ ...remote, port: 1143, secure: true }), { port: 1143, secure: true, startTlsRequired: false });
    assert.deepEqual(imapTransport({ ...remote, port: 143, allowInsecureAuth: true }), { port: 143, secure: false, startTlsRequired: false });
    assert.deepEqual(imapTransport({ host: '127.0.0.1', port: 143 }), { port: 143, secure: false, startTlsRequired: false });
    assert.deepEqual(imapTransport({ host: 'localhost', port: 143, allowInsecureAuth: false }), { port: 143, secure: false, startTlsRequired: true });
  });

  const settings = { mailbox: 'INBOX', connectTimeoutMs: 1_000, clock: systemClock } as const;
  const missing = [
    { library: 'imapflow', peer: 'imapflow-not-installed', adapter: new ImapFlowAdapter({ client: 'imapflow', ...server }, settings, 'imapflow-not-installed') },
    { library: 'node-imap', peer: 'imap-not-installed', adapter: new NodeImapAdapter({ client: 'node-imap', ...server }, settings, 'imap-not-installed') },
  ];
  for (const { library, peer, adapter } of missing) {
    it(`${library}: a missing client library fails the connect with the command that installs it`, async () => {
      await assert.rejects(adapter.open(new AbortController().signal), (error: unknown) => {
        assert.ok(error instanceof MissingDependencyError);
        assert.equal(
          error.message,
          `The "${peer}" package is required for IMAP connections with client "${library}" but is not installed. ` +
            `Run "npm install ${peer}" and try again.`,
        );
        return true;
      });
      assert.equal(adapter.currentClient(), undefined);
    });
  }
});
