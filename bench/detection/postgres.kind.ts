import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { PostgresServer } from '../../test/kit/postgres.server.js';
import { now } from '../kit/stats.js';
import type { DetectionKind, Noticed, RawWatch } from './detection-kind.interface.js';

/** How often the raw clients run SELECT 1, like an app that uses its connection now and then. */
const RAW_QUERY_EVERY_MS = 1_000;

function postgresOptions(host: string, port: number) {
  return { type: 'postgres' as const, host, port, username: 'postgres', database: 'postgres', logging: false };
}

/**
 * Runs `query` every RAW_QUERY_EVERY_MS, one at a time and with no deadline (the library's default), and
 * reports a rejection; returns the function that stops the loop.
 */
function queryLoop(query: () => Promise<unknown>, report: (how: string) => void): () => void {
  let stopped = false;
  void (async () => {
    while (!stopped) {
      await sleep(RAW_QUERY_EVERY_MS);
      if (stopped) return;
      try {
        await query();
      } catch (error) {
        report(`query rejected: ${(error as Error).message}`);
      }
    }
  })();
  return () => (stopped = true);
}

/** Waits for a polite end, then destroys the sockets: a blackholed connection never ends politely. */
async function endOrDestroy(end: () => Promise<unknown>, destroy: () => void): Promise<void> {
  const ended = end().then(
    () => true,
    () => true,
  );
  if (!(await Promise.race([ended, sleep(1_000).then(() => false)]))) destroy();
}

async function watchPgClient(host: string, port: number): Promise<RawWatch> {
  const client = new pg.Client({ host, port, user: 'postgres', database: 'postgres' });
  let report!: (how: string) => void;
  const noticed = new Promise<Noticed>((resolve) => (report = (how) => resolve({ at: now(), how })));
  client.on('error', (error) => report(`'error' event: ${error.message}`));
  client.on('end', () => report(`'end' event`));
  await client.connect();
  const stopLoop = queryLoop(() => client.query('SELECT 1'), report);
  return {
    noticed,
    close: async () => {
      stopLoop();
      const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
      await endOrDestroy(() => client.end(), () => stream?.destroy());
    },
  };
}

interface PgPoolLike {
  on(event: 'error', listener: (error: Error) => void): void;
  _clients?: Array<{ connection?: { stream?: { destroy(): void } } }>;
}

async function watchTypeOrm(host: string, port: number): Promise<RawWatch> {
  const dataSource = new DataSource(postgresOptions(host, port));
  let report!: (how: string) => void;
  const noticed = new Promise<Noticed>((resolve) => (report = (how) => resolve({ at: now(), how })));
  await dataSource.initialize();
  // TypeORM only logs a pool error as a warning; that log line is the one sign an app gets.
  const pool = (dataSource.driver as unknown as { master: PgPoolLike }).master;
  pool.on('error', (error) => report(`pool 'error' (logged as a warning): ${error.message}`));
  const stopLoop = queryLoop(() => dataSource.query('SELECT 1'), report);
  return {
    noticed,
    close: async () => {
      stopLoop();
      await endOrDestroy(
        () => dataSource.destroy(),
        () => pool._clients?.forEach((c) => c.connection?.stream?.destroy()),
      );
    },
  };
}

/** PostgreSQL 15 from the test kit, monitored through a TypeORM DataSource (kind 'typeorm'). */
export const postgresTypeOrmKind: DetectionKind = {
  label: 'PostgreSQL 15 · TypeORM',
  server: 'PostgreSQL 15',
  startServer: () => PostgresServer.start(),
  connection: (host, port) => {
    const dataSource = new DataSource(postgresOptions(host, port));
    return { definition: { name: 'pg', kind: 'typeorm', dataSource }, dataSource };
  },
  raw: [
    { name: 'pg.Client', usage: `SELECT 1 every ${RAW_QUERY_EVERY_MS} ms, no timeout set`, watch: watchPgClient },
    { name: 'TypeORM DataSource', usage: `SELECT 1 every ${RAW_QUERY_EVERY_MS} ms, no timeout set`, watch: watchTypeOrm },
  ],
};
