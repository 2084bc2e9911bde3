/**
 * Third hostile review of the microservice kind: the own `close` property the package puts on the app's
 * ClientProxy to record the app's close(). The app expects its proxy back as it was once the package is gone
 * (app.close()), whatever ran it: each test states that expectation; a failure is a finding.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Module } from '@nestjs/common';
import { ClientProxy, ClientsModule, Transport, type ClientProviderOptions } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { ConnectionHealthModule, type ConnectionDefinition } from '../lib/index.js';
import { ConnectionHealthTesting } from '../lib/testing/index.js';
import type { RedisServer } from './kit/redis.server.js';
import { sharedRedis } from './kit/shared-servers.js';
import { TestApp } from './kit/test-app.js';

const timing = {
  heartbeat: { intervalMs: 1_000, timeoutMs: 600, connectTimeoutMs: 2_000 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: Infinity },
};
const microservice = (name: string, client: unknown) => ({ name, kind: 'microservice', client, ...timing }) as unknown as ConnectionDefinition;
const ownClose = (client: object) => Object.getOwnPropertyDescriptor(client, 'close');

let redis: RedisServer;
before(async () => {
  redis = await sharedRedis();
});

describe('review 3: the app gets its ClientProxy back as it was after app.close()', () => {
  it('ConnectionHealthTesting (the real adapter built, never called): no own close is left on the app\'s proxy', async () => {
    // No server needed: the controlled connection never touches the proxy's transport.
    @Module({
      imports: [
        ClientsModule.register([{ name: 'ORDERS', transport: Transport.REDIS, options: { host: '127.0.0.1', port: 1, lazyConnect: true } } as ClientProviderOptions]),
        ConnectionHealthModule.forRoot({ connections: [microservice('orders', 'ORDERS')] }),
      ],
    })
    class AppModule {}
    const testing = new ConnectionHealthTesting();
    const moduleRef = await testing.override(Test.createTestingModule({ imports: [AppModule] })).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    const client = app.get<ClientProxy>('ORDERS');
    assert.equal(ownClose(client), undefined, 'the proxy has no own close before the package');
    await app.init();
    await app.close();
    assert.equal(
      ownClose(client),
      undefined,
      "after app.close() the app's ClientProxy still carries the package's recording close (the real adapter's constructor put it there; only its close(), never called under ConnectionHealthTesting, removes it)",
    );
  });

  it('one proxy watched by two connections: no own close is left after app.close()', async () => {
    const app = await TestApp.start({
      imports: [ClientsModule.register([{ name: 'REDIS', transport: Transport.REDIS, options: { host: redis.host, port: redis.port } } as ClientProviderOptions])],
      health: { shutdown: { timeoutMs: 1_000 }, connections: [microservice('redis-a', 'REDIS'), microservice('redis-b', 'REDIS')] },
    });
    const client = app.app.get<ClientProxy>('REDIS');
    try {
      await app.waitFor('redis-a', (s) => s.state === 'up', 30_000);
      await app.waitFor('redis-b', (s) => s.state === 'up', 30_000);
    } finally {
      await app.close();
    }
    assert.equal(
      ownClose(client),
      undefined,
      "after app.close() the app's ClientProxy still carries a recording close of the package (the first connection's, restored by the second as the 'own' close it found)",
    );
  });
});

