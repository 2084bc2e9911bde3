import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MissingDependencyError } from '../core/errors/missing-dependency.error.js';
import { loadPeer, requirePeer } from './load-peer.js';

describe('loadPeer', () => {
  it('loads an installed optional peer', async () => {
    const typeorm = await loadPeer<{ DataSource: unknown }>('typeorm', 'TypeORM connections');
    assert.equal(typeof typeorm.DataSource, 'function');
  });

  it('names the missing package and the command that installs it', async () => {
    await assert.rejects(loadPeer('imapflow-not-installed', 'IMAP connections (imapflow)'), (error: unknown) => {
      assert.ok(error instanceof MissingDependencyError);
      assert.equal(error.packageName, 'imapflow-not-installed');
      assert.equal(
        error.message,
        'The "imapflow-not-installed" package is required for IMAP connections (imapflow) but is not installed. ' +
          'Run "npm install imapflow-not-installed" and try again.',
      );
      return true;
    });
  });
});

describe('requirePeer', () => {
  it('passes an installed optional peer without loading it', () => {
    assert.doesNotThrow(() => requirePeer('imap', 'IMAP connections with client "node-imap"', 'Connection "mail"'));
  });

  it('names the place, the missing package and the command that installs it', () => {
    assert.throws(
      () => requirePeer('imap-not-installed', 'IMAP connections with client "node-imap"', 'Connection "mail"'),
      (error: unknown) => {
        assert.ok(error instanceof MissingDependencyError);
        assert.equal(error.place, 'Connection "mail"');
        assert.equal(
          error.message,
          'Connection "mail": the "imap-not-installed" package is required for IMAP connections with client "node-imap" ' +
            'but is not installed. Run "npm install imap-not-installed" and try again.',
        );
        return true;
      },
    );
  });
});
