import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkModuleOptions } from '../connection-health.options-check.js';
import { ConnectionHealthConfigError } from '../core/errors/connection-health-config.error.js';
import type { ConnectionHealthModuleOptions } from '../interfaces/connection-health-options.interface.js';
import { LogPublisher } from './log.publisher.js';
import { WebhookPublisher } from './webhook.publisher.js';

const PLACE = 'ConnectionHealthModule.forRoot()';
const SECRET_URL = 'https://hooks.example.com:8443/services/T0/B0/SecretToken123456';

function refusal(publishers: unknown): ConnectionHealthConfigError {
  try {
    checkModuleOptions({ publishers } as ConnectionHealthModuleOptions, PLACE);
  } catch (error) {
    assert.ok(error instanceof ConnectionHealthConfigError, String(error));
    return error;
  }
  assert.fail(`accepted ${String(publishers)}`);
}

describe('the publishers option at bootstrap', () => {
  it('takes the built-in publishers and an object of the app with publish()', () => {
    checkModuleOptions({ publishers: [new WebhookPublisher({ url: SECRET_URL, secret: 'x'.repeat(16) }), new LogPublisher(), { publish: () => undefined }] }, PLACE);
  });

  it('names the option, the value and the fix, and never shows the URL beyond its origin nor the secret', () => {
    const cases: Array<[unknown, RegExp]> = [
      [new LogPublisher(), /option "publishers" is an object\. Pass an array of publishers/],
      [[{ url: SECRET_URL }], /option "publishers\[0\]" is an object\. Pass an object with a publish\(change, \{ signal \}\) method.*needs its `new WebhookPublisher/],
      [[{ name: 'pager' }], /option "publishers\[0\]" is an object\. Pass an object with a publish/],
      [[{ publish: () => undefined, flush: 'soon' }], /option "publishers\[0\]\.flush" is "soon"\. Pass a function/],
      [[new LogPublisher(), new WebhookPublisher({ url: 'ftp://user:pw@files.example.com/SecretToken123456' })], /option "publishers\[1\]\.url" is "ftp:\/\/files\.example\.com"\. Use an absolute http or https URL/],
      [[new WebhookPublisher({ url: 'hooks.slack.com/services/SecretToken123456' })], /option "publishers\[0\]\.url" is a string\. Use an absolute http or https URL/],
      // The README's example with ALERT_WEBHOOK_URL unset: no fallback, the bootstrap stops.
      [[new WebhookPublisher({ url: process.env.CH_UNSET_WEBHOOK_URL! })], /option "publishers\[0\]\.url" is undefined\. Use an absolute http or https URL/],
      [[new WebhookPublisher({ url: SECRET_URL, reasons: 'no' as unknown as boolean })], /option "publishers\[0\]\.reasons" is "no"\. Use one of true, false/],
      [[new WebhookPublisher({ url: SECRET_URL, secret: 'short-secret' })], /option "publishers\[0\]\.secret" is a string\. Use a string of at least 16 characters/],
      [[new WebhookPublisher({ url: SECRET_URL, timeoutMs: 0 })], /option "publishers\[0\]\.timeoutMs" is 0\. Use a number of milliseconds above 0/],
      [[new WebhookPublisher({ url: SECRET_URL, retries: -1 })], /option "publishers\[0\]\.retries" is -1\. Use a whole number from 0/],
      [[new WebhookPublisher({ url: SECRET_URL, retryDelayMs: 5_000, maxRetryDelayMs: 1_000 })], /option "publishers\[0\]\.maxRetryDelayMs" is 1000\. Use at least retryDelayMs \(5000\)/],
      [[new WebhookPublisher({ url: SECRET_URL, throttle: { maxPerWindow: 0 } })], /option "publishers\[0\]\.throttle\.maxPerWindow" is 0\. Use a whole number of at least 1/],
      [[new WebhookPublisher({ url: SECRET_URL, throttle: { windowMS: 1_000 } as never })], /option "publishers\[0\]\.throttle\.windowMS" .*Did you mean "throttle\.windowMs"\?/],
      [[new WebhookPublisher({ url: SECRET_URL, maxQueue: 1e6 })], /option "publishers\[0\]\.maxQueue" is 1000000\. Use a whole number from 1 to 10000/],
    ];
    for (const [publishers, expected] of cases) {
      const error = refusal(publishers);
      assert.match(error.message, new RegExp(`^ConnectionHealthModule\\.forRoot\\(\\): ${expected.source}`), error.message);
      for (const secret of ['SecretToken123456', 'user:pw', 'short-secret']) {
        assert.ok(!error.message.includes(secret) && !JSON.stringify(error.value ?? '').includes(secret), error.message);
      }
    }
  });

  it('a util.inspect or JSON of the webhook publisher shows the origin alone', async () => {
    const { inspect } = await import('node:util');
    const publisher = new WebhookPublisher({ url: SECRET_URL, secret: 'y'.repeat(20) });
    assert.equal(inspect(publisher), 'WebhookPublisher { webhook: https://hooks.example.com:8443 }');
    assert.equal(JSON.stringify(publisher), '{"name":"webhook","url":"https://hooks.example.com:8443"}');
  });
});
