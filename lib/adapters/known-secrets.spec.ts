import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { headerSecrets, optionSecrets, urlSecrets } from './known-secrets.js';

describe('known secrets: the credentials each kind reads from its options', () => {
  it('finds credentials under any key that names one, nested as drivers nest them, numbers included', () => {
    const options = {
      type: 'mssql',
      host: 'db.internal',
      port: 1433,
      authentication: { type: 'azure-active-directory-service-principal-secret', options: { clientId: 'app', clientSecret: 'cs-1' } },
      replication: { master: { password: 'master-pw' }, slaves: [{ authentication: { options: { password: 'slave-pw' } } }] },
      extra: { walletPassword: 'wallet-pw', sentinelPassword: 'sentinel-pw', AWS_SESSION_TOKEN: 'session-token', connectString: 'oracle://u:oracle-pw@db/x' },
      ssl: { passphrase: 'key-pass', ca: 'not a secret' },
      cache: { options: { password: 12345 } },
      passive: true,
      bypassDocumentValidation: 'no',
      proxy: 'socks5://u:proxy-pw@proxy:1080',
    };
    assert.deepEqual(new Set(optionSecrets(options)), new Set([
      'cs-1', 'master-pw', 'slave-pw', 'wallet-pw', 'sentinel-pw', 'session-token', 'oracle-pw', 'key-pass', '12345', 'proxy-pw',
    ]));
  });

  it("reads a URL's password as a driver and as a URL parser split it", () => {
    assert.deepEqual(new Set(urlSecrets('postgres://u:pw@h/db?x=a@b')), new Set(['pw@h/db?x=a', 'pw']));
    assert.deepEqual(new Set(urlSecrets('postgres://u:p%40ss@h/db')), new Set(['p%40ss', 'p@ss']));
    assert.deepEqual(urlSecrets('Host=db;Username=app;Password=s3 cr3t'), ['s3']);
    assert.deepEqual(urlSecrets("host=db password='s3 cr3t'"), ['s3 cr3t']);
    assert.deepEqual(urlSecrets('postgres://db/x'), []);
  });

  it('takes credential headers, and the parts of an Authorization value', () => {
    const basic = Buffer.from('bob:hunter22').toString('base64');
    assert.deepEqual(new Set(headerSecrets({ login: 'bob', passcode: 'pc', authorization: `Basic ${basic}`, 'x-api-key': 'k', 'client-id': 'c' })), new Set([
      'pc', `Basic ${basic}`, basic, 'bob:hunter22', 'hunter22', 'k',
    ]));
  });

  it('requires an imapflow with doSTARTTLS (1.0.170): an older one would log in in clear where STARTTLS is missing', () => {
    const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { peerDependencies: Record<string, string> };
    assert.equal(manifest.peerDependencies.imapflow, '^1.0.170 || ^2.0.0');
  });
});
