import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import amqp from 'amqplib';
import { AmqpConnectionManagerClass } from 'amqp-connection-manager';
import { amqpShape } from './amqp-like.js';

// Nothing listens on port 1: these connections never open, and give up at once.
const nowhere = 'amqp://127.0.0.1:1';
const require = createRequire(import.meta.url);

describe('amqpShape', () => {
  it("tells amqplib's recovering model, created without waiting for its connection", async () => {
    const model = await amqp.connect(nowhere, { recovery: { waitForConnect: false, maxRetries: 0 } });
    model.on('error', () => undefined);
    try {
      assert.equal(amqpShape(model), 'recovering');
    } finally {
      await model.close();
    }
  });

  it('tells an amqp-connection-manager, which connects only when asked', () => {
    const manager = new AmqpConnectionManagerClass([nowhere]);
    assert.equal(amqpShape(manager), 'manager');
  });

  it("refuses a recovering model of amqplib's callback API, whose methods take callbacks", async () => {
    const callbackApi = require('amqplib/callback_api') as { connect(url: string, options: object, done: (error: unknown, model: unknown) => void): void };
    const model = await new Promise<{ close(done: () => void): void; on(event: string, listener: () => void): void }>((resolve, reject) =>
      callbackApi.connect(nowhere, { recovery: { waitForConnect: false, maxRetries: 0 } }, (error, connected) => (error ? reject(error) : resolve(connected as never))),
    );
    model.on('error', () => undefined);
    try {
      assert.equal(amqpShape(model), undefined);
    } finally {
      await new Promise<void>((resolve) => model.close(resolve));
    }
  });

  it('refuses what is not a connection', () => {
    for (const value of [undefined, null, 'amqp://broker', {}, { close: () => undefined }, { on() {}, removeListener() {}, close() {} }]) {
      assert.equal(amqpShape(value), undefined, String(value));
    }
  });
});
