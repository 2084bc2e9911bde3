import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Logger, type LoggerService } from '@nestjs/common';
import { SecretScrubber } from '../core/secret-scrubber.js';
import { ConnectionHealthLogger } from '../logging/connection-health.logger.js';
import { ConnectionHealthRegistry } from './connection-health.registry.js';

describe('ConnectionHealthRegistry', () => {
  after(() => Logger.overrideLogger(true));

  it("logs a failed callback's stack without the secrets in it", () => {
    const lines: unknown[][] = [];
    const capture = (...args: unknown[]) => void lines.push(args);
    const logger: LoggerService = { log: capture, error: capture, warn: capture };
    Logger.overrideLogger(logger);
    const error = new Error('webhook refused');
    error.stack = 'Error: webhook refused\n    at post (https://hooks:T0pS3cret@hooks.example/notify?token=abc123)';
    new ConnectionHealthRegistry(new ConnectionHealthLogger(new SecretScrubber())).reportCallbackFailure(error, 'Connection "broker": a subscriber of events$ threw (webhook refused); the monitor goes on.');
    assert.equal(lines.length, 1);
    assert.doesNotMatch(JSON.stringify(lines), /T0pS3cret|abc123/);
    assert.match(JSON.stringify(lines), /at post/, 'the stack is still there');
  });
});
