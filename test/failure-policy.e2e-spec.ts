import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'exit-policy.app.js');

describe("the 'exit' failure policy, in a real process", () => {
  it('logs the failure at fatal level, without secrets, and exits with the configured code', async () => {
    const child = spawn(process.execPath, [fixture], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const [code] = await once(child, 'exit');
    clearTimeout(timer);
    assert.equal(code, 3, output);
    assert.match(output, /FATAL.*ledger failed for good \(failure policy 'exit'\): gave up after 2 reconnect attempt\(s\): ECONNREFUSED postgres:\/\/\*\*\*@ledger-db:5432; exiting with code 3/);
    assert.match(output, /ERROR.*ledger: reconnecting -> failed .*\{ connection: 'ledger', kind: 'custom', from: 'reconnecting', to: 'failed'/);
    assert.doesNotMatch(output, /s3cr3t/);
  });
});
