import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLoopbackHost } from './loopback-host.js';

describe('isLoopbackHost', () => {
  it('knows localhost, 127.0.0.0/8 and ::1 in their usual spellings', () => {
    for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) {
      assert.equal(isLoopbackHost(host), true, host);
    }
  });

  it('counts every other address or name as remote', () => {
    for (const host of ['192.0.2.2', '10.0.0.1', '128.0.0.1', 'fd00::2', '::', '0.0.0.0', '::ffff:10.0.0.1', 'imap.example.com', 'localhost.example.com', 'localhost.', 'my-localhost']) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });
});
