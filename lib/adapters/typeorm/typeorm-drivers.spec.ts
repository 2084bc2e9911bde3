import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DataSourceOptions } from 'typeorm';
import { probeOptions } from './typeorm-drivers.js';

const settings = { applicationName: 'connection-health:orders', connectTimeoutMs: 3_000, onPoolError: () => undefined };
class Order {}
class Audit {}
class Init1 {}

describe('probeOptions', () => {
  it('keeps the connection options of a PostgreSQL data source and drops its schema, schema steps, logging and cache; one pooled connection', () => {
    const app: DataSourceOptions = {
      type: 'postgres',
      url: 'postgres://app:secret@db:5432/orders',
      ssl: { rejectUnauthorized: true },
      entities: [Order],
      subscribers: [Audit],
      migrations: [Init1],
      synchronize: true,
      migrationsRun: true,
      dropSchema: true,
      logging: 'all',
      cache: { type: 'redis' },
      poolSize: 20,
      applicationName: 'orders-api',
      extensions: ['postgis'],
      extra: { max: 20, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 60_000, statement_timeout: 5_000 },
    };
    const probe = probeOptions(app, settings) as DataSourceOptions & Record<string, unknown>;
    assert.equal(probe.url, app.url);
    assert.deepEqual(probe.ssl, app.ssl);
    assert.deepEqual([probe.entities, probe.subscribers, probe.migrations], [[], [], []]);
    assert.deepEqual([probe.synchronize, probe.migrationsRun, probe.dropSchema, probe.cache, probe.logging], [false, false, false, false, false]);
    assert.equal(probe.installExtensions, false);
    assert.equal(probe.extensions, undefined);
    assert.equal(probe.poolSize, 1);
    assert.equal(probe.applicationName, 'connection-health:orders');
    assert.equal(probe.poolErrorHandler, settings.onPoolError);
    assert.deepEqual(probe.extra, {
      max: 1,
      idleTimeoutMillis: 0,
      connectionTimeoutMillis: 3_000,
      statement_timeout: 5_000,
      application_name: 'connection-health:orders',
    });
    assert.equal((app.extra as { max: number }).max, 20, "the app's options are left as they were");
  });

  it('probes the master of a replicated data source', () => {
    const probe = probeOptions(
      {
        type: 'mysql',
        replication: { master: { host: 'primary', username: 'app' }, slaves: [{ host: 'replica', username: 'app' }] },
        extra: { connectionLimit: 50 },
      },
      settings,
    ) as DataSourceOptions & Record<string, unknown>;
    assert.equal(probe.replication, undefined);
    assert.equal(probe.host, 'primary');
    assert.equal(probe.connectTimeout, 3_000);
    assert.deepEqual([probe.poolSize, (probe.extra as { connectionLimit: number }).connectionLimit], [1, 1]);
  });

  it('gives SQL Server a pool of one, also where `extra` sets the pool', () => {
    const probe = probeOptions({ type: 'mssql', host: 'db', pool: { max: 30, min: 5 }, extra: { pool: { max: 30 } } }, settings) as DataSourceOptions &
      Record<string, unknown>;
    assert.deepEqual(probe.pool, { max: 1, min: 0 });
    assert.deepEqual((probe.extra as { pool: object }).pool, { max: 1, min: 0 });
  });
});
