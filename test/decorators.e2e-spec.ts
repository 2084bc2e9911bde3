import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Scope } from '@nestjs/common';
import type { Client } from '@stomp/stompjs';
import type Imap from 'imap';
import { ImapFlow } from 'imapflow';
import { DataSource } from 'typeorm';
import {
  ConnectionHandle,
  ConnectionHealthConfigError,
  ConnectionHeartbeat,
  InjectConnection,
  MonitorConnection,
  OnConnected,
  OnConnectionFailed,
  OnConnectionLost,
  OnConnectionRecovered,
  type StateChangeEvent,
} from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import type { PostgresServer } from './kit/postgres.server.js';
import { DovecotServer } from './kit/dovecot.server.js';
import { sharedActiveMq, sharedDovecot, sharedPostgres } from './kit/shared-servers.js';
import { TestApp } from './kit/test-app.js';
import { RecordingLogger } from './kit/recording-logger.js';

const fast = {
  heartbeat: { intervalMs: 400, timeoutMs: 200, connectTimeoutMs: 500 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 300, maxAttempts: Infinity },
};
let proxy: ChaosProxy;

/** A real HTTP upstream whose /ping a decorated heartbeat calls. */
class Upstream {
  private server?: Server;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((_request, response) => response.end('pong'));
    await new Promise<void>((resolve) => this.server?.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
const upstream = new Upstream();

@Injectable()
class OrdersStore {
  @MonitorConnection({ name: 'orders', kind: 'typeorm', ...fast })
  readonly dataSource = new DataSource({ type: 'postgres', host: proxy.host, port: proxy.port, username: 'postgres', database: 'postgres' });
}

@Injectable()
class PricingClient {
  @ConnectionHeartbeat('pricing', { ...fast, reconnect: { initialDelayMs: 100, maxDelayMs: 100, maxAttempts: 2 }, failure: { policy: 'stop' } })
  async ping(signal: AbortSignal): Promise<void> {
    const response = await fetch(`http://127.0.0.1:${upstream.port}/ping`, { signal, headers: { connection: 'close' } });
    if ((await response.text()) !== 'pong') throw new Error('pricing answered nonsense');
  }
}

@Injectable()
class Watcher {
  readonly seen: string[] = [];

  constructor(@InjectConnection('orders') readonly orders: ConnectionHandle) {}

  @OnConnected('orders')
  connected(event: StateChangeEvent) {
    this.seen.push(`connected:${event.name}`);
  }

  @OnConnectionLost('orders')
  lost(event: StateChangeEvent) {
    this.seen.push(`lost:${event.name}`);
  }

  @OnConnectionRecovered('orders')
  recovered(event: StateChangeEvent) {
    this.seen.push(`recovered:${event.name}`);
  }

  @OnConnectionFailed('pricing')
  failed(event: StateChangeEvent) {
    this.seen.push(`failed:${event.name}`);
  }

  @OnConnectionLost()
  throwsOnEveryLoss(): void {
    throw new Error('a broken handler');
  }

  @OnConnectionLost('orders')
  @OnConnectionRecovered('orders')
  async neverSettles(): Promise<void> {
    await new Promise(() => undefined); // must not block beats
  }
}

describe('decorators only: a DataSource on real PostgreSQL, an HTTP heartbeat, lifecycle handlers, an injected handle', () => {
  let server: PostgresServer;
  before(async () => {
    server = await sharedPostgres();
    proxy = await ChaosProxy.start(server.host, server.port);
    await upstream.start();
  });
  after(async () => {
    await proxy.close();
    await upstream.stop();
  });

  it('monitors what the providers declare, calls handlers at each moment, survives broken handlers', async () => {
    const logger = new RecordingLogger();
    const app = await TestApp.start({ providers: [OrdersStore, PricingClient, Watcher], logger });
    const watcher = app.app.get(Watcher);
    const store = app.app.get(OrdersStore);
    try {
      await app.waitFor('orders', (s) => s.lastBeatAt !== undefined, 5_000);
      await app.waitFor('pricing', (s) => s.lastBeatAt !== undefined, 5_000);
      assert.equal(watcher.orders.state, 'up', 'the injected handle is bound');
      assert.deepEqual((await store.dataSource.query('SELECT 1 AS one')) as unknown, [{ one: 1 }]);
      const { status, body } = await app.health();
      assert.equal(status, 200);
      assert.deepEqual(Object.keys(body.details).sort(), ['orders', 'pricing']);
      assert.equal(body.details.pricing?.kind, 'custom');

      proxy.reset();
      await app.waitForState('orders', 'down', 3_000);
      await app.waitForState('orders', 'up', 5_000);
      await app.waitFor('orders', (s) => s.lastBeatAt !== undefined && s.lastBeatAt > s.since, 3_000); // beats go on

      await upstream.stop();
      await app.waitForState('pricing', 'failed', 5_000);
      await sleep(50);
      assert.deepEqual(watcher.seen, ['connected:orders', 'lost:orders', 'recovered:orders', 'failed:pricing']);
      const handlerErrors = logger.lines.filter((line) => line.level === 'error' && line.message.includes('handler Watcher.'));
      assert.ok(handlerErrors.some((line) => line.message === 'Connection "orders": the @OnConnectionLost handler Watcher.throwsOnEveryLoss threw (a broken handler); the monitor goes on.'));
    } finally {
      await app.close();
      await upstream.start();
    }
  });
});

describe('where decorated connections come from', () => {
  it('calls a decorated method once to get its DataSource, and finds providers made with useValue and useFactory', async () => {
    class SqliteFactory {
      calls = 0;
      @MonitorConnection({ name: 'local', kind: 'typeorm', ...fast })
      createDataSource(): DataSource {
        this.calls += 1;
        return new DataSource({ type: 'sqljs' });
      }
    }
    class ByValue {
      @ConnectionHeartbeat('by-value', fast)
      async ping(): Promise<void> {}
    }
    class ByFactory {
      @ConnectionHeartbeat('by-factory', fast)
      async ping(): Promise<void> {}
    }
    const app = await TestApp.start({
      providers: [SqliteFactory, { provide: 'VALUE', useValue: new ByValue() }, { provide: 'FACTORY', useFactory: () => new ByFactory() }],
    });
    try {
      for (const name of ['local', 'by-value', 'by-factory']) await app.waitForState(name, 'up', 3_000);
      assert.equal(app.app.get(SqliteFactory).calls, 1);
    } finally {
      await app.close();
    }
  });
});

describe('decorator mistakes found at bootstrap', () => {
  async function bootstrapError(providers: unknown[], health?: object): Promise<ConnectionHealthConfigError> {
    try {
      const app = await TestApp.start({ providers: providers as never, health: health as never });
      await app.close();
    } catch (error) {
      assert.ok(error instanceof ConnectionHealthConfigError, String(error));
      return error;
    }
    assert.fail('the app bootstrapped although its decorators are wrong');
  }

  it('rejects a name taken both in forRoot and by a decorator', async () => {
    class Duplicate {
      @ConnectionHeartbeat('cache')
      async ping(): Promise<void> {}
    }
    const error = await bootstrapError([Duplicate], { connections: [{ name: 'cache', kind: 'custom', ping: async () => undefined }] });
    assert.equal(error.message, 'Connection "cache" is registered twice (again by @ConnectionHeartbeat on Duplicate.ping). Give every monitored connection a unique name.');
  });

  it('rejects a heartbeat of the wrong shape', async () => {
    class TwoArguments {
      @ConnectionHeartbeat('grpc')
      async ping(_signal: AbortSignal, _extra: string): Promise<void> {}
    }
    const error = await bootstrapError([TwoArguments]);
    assert.equal(
      error.message,
      '@ConnectionHeartbeat() on TwoArguments.ping takes 2 parameters. A heartbeat takes one, (signal: AbortSignal), and returns a promise that resolves when the far end answered.',
    );
  });

  it('rejects a handler for a name nothing registers', async () => {
    class Typo {
      @ConnectionHeartbeat('orders-db')
      async ping(): Promise<void> {}
      @OnConnectionLost('orders_db')
      lost(): void {}
    }
    const error = await bootstrapError([Typo]);
    assert.equal(error.message, `@OnConnectionLost('orders_db') on Typo.lost names no monitored connection. Known connections: "orders-db".`);
  });

  it('warns, exactly, about a decorator on a request-scoped provider and monitors nothing of it', async () => {
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {
      @ConnectionHeartbeat('per-request')
      async ping(): Promise<void> {}
    }
    const logger = new RecordingLogger();
    const app = await TestApp.start({ providers: [PerRequest], logger });
    try {
      assert.deepEqual(app.registry.names(), []);
      assert.ok(
        logger.lines.some(
          (line) =>
            line.level === 'warn' &&
            line.message ===
              'Cannot monitor a heartbeat or handler declared by PerRequest.ping because it is defined in a non static provider. ' +
                'Connection health needs a singleton provider: remove the request scope, or declare the connection elsewhere.',
        ),
        JSON.stringify(logger.lines.filter((line) => line.level === 'warn')),
      );
    } finally {
      await app.close();
    }
  });
});

describe('decorated IMAP and STOMP connections against real dovecot and ActiveMQ', () => {
  const timing = {
    heartbeat: { intervalMs: 1_000, timeoutMs: 500, connectTimeoutMs: 3_000 },
    reconnect: { initialDelayMs: 100, maxDelayMs: 300, maxAttempts: Infinity },
  };

  it('calls a decorated IMAP factory for every session, and keeps decorated properties on the live clients', async () => {
    const dovecot = await sharedDovecot();
    const activemq = await sharedActiveMq();
    const login = { user: DovecotServer.user, pass: DovecotServer.password };

    @Injectable()
    class MailReader {
      sessions = 0;
      @MonitorConnection({ name: 'mail', kind: 'imap', client: 'imapflow', ...timing })
      createClient(): ImapFlow {
        this.sessions += 1;
        return new ImapFlow({ host: dovecot.host, port: dovecot.port, secure: false, auth: login, logger: false });
      }
    }

    @Injectable()
    class MailWatcher {
      @MonitorConnection({ name: 'mail-live', kind: 'imap', client: 'node-imap', host: dovecot.host, port: dovecot.port, auth: login, ...timing })
      client?: Imap;
    }

    @Injectable()
    class OrdersListener {
      @MonitorConnection({ name: 'broker', kind: 'stomp', host: activemq.host, port: activemq.port, ...timing })
      client?: Client;
    }

    const app = await TestApp.start({ providers: [MailReader, MailWatcher, OrdersListener] });
    try {
      for (const name of ['mail', 'mail-live', 'broker']) await app.waitFor(name, (s) => s.lastBeatAt !== undefined, 10_000);
      const reader = app.app.get(MailReader);
      const watcher = app.app.get(MailWatcher);
      const listener = app.app.get(OrdersListener);
      assert.equal(reader.sessions, 1);
      assert.equal(watcher.client, app.registry.get('mail-live').client(), 'the property holds the live node-imap client');
      assert.equal(listener.client, app.registry.get('broker').client(), 'the property holds the live STOMP client');
      assert.equal(listener.client?.connected, true);

      const firstStomp = listener.client;
      app.registry.get('broker').forceReconnect('test');
      assert.equal(app.registry.get('broker').client(), undefined, 'no live client while down');
      assert.equal(listener.client as Client | undefined, undefined, 'the property lets go of the lost client at once');
      await dovecot.kick();
      await app.waitFor('mail', (s) => s.state === 'up' && s.connectedAt !== undefined && s.reconnectAttempts === 0 && reader.sessions === 2, 10_000);
      await app.waitFor('broker', (s) => s.state === 'up' && listener.client !== firstStomp, 10_000);
      await app.waitForState('mail-live', 'up', 10_000);
      assert.equal(reader.sessions, 2, 'a new ImapFlow for the new session');
      assert.equal(listener.client?.connected, true, 'the property follows the new STOMP client');
      assert.equal(watcher.client, app.registry.get('mail-live').client());
    } finally {
      await app.close();
    }
  });

  it('rejects @MonitorConnection for STOMP on a method', async () => {
    class WrongPlace {
      @MonitorConnection({ name: 'broker', kind: 'stomp', host: '127.0.0.1' })
      client(): Client | undefined {
        return undefined;
      }
    }
    try {
      const app = await TestApp.start({ providers: [WrongPlace] });
      await app.close();
      assert.fail('bootstrapped');
    } catch (error) {
      assert.ok(error instanceof ConnectionHealthConfigError);
      assert.equal(
        error.message,
        "@MonitorConnection({ kind: 'stomp' }) on the method WrongPlace.client: the package creates STOMP clients itself. Put it on a property instead, which then always holds the live client.",
      );
    }
  });
});
