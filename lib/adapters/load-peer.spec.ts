import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MissingDependencyError } from '../core/errors/missing-dependency.error.js';
import { loadPeer, verifyPeer } from './load-peer.js';

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

describe('verifyPeer', () => {
  const need = (packageName: string) => ({ packageName, feature: 'IMAP connections with client "node-imap"', place: 'Connection "mail"' });

  it('passes an installed optional peer', async () => {
    await verifyPeer(need('imap'));
  });

  it('names the place, the missing package and the command that installs it', async () => {
    await assert.rejects(verifyPeer(need('imap-not-installed')), (error: unknown) => {
      assert.ok(error instanceof MissingDependencyError);
      assert.equal(error.place, 'Connection "mail"');
      assert.equal(
        error.message,
        'Connection "mail": the "imap-not-installed" package is required for IMAP connections with client "node-imap" ' +
          'but is not installed. Run "npm install imap-not-installed" and try again.',
      );
      return true;
    });
  });

  it('leaves import.meta out of the package: code a test runner turns into CommonJS could not even be parsed', async () => {
    const { readdir, readFile } = await import('node:fs/promises');
    const root = new URL('../', import.meta.url);
    const files = (await readdir(root, { recursive: true })).filter((file) => file.endsWith('.js') && !file.endsWith('.spec.js'));
    const using = [];
    for (const file of files) if ((await readFile(new URL(file, root), 'utf8')).includes('import.meta')) using.push(file);
    assert.deepEqual(using, []);
  });
});
