import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { PostgresServer } from '../../test/kit/postgres.server.js';

/** The database the /health bench app uses; queries are counted per role in it. */
export const BENCH_DATABASE = 'bench';
/** Role of the monitored data source: its queries are heartbeats. */
export const MONITOR_ROLE = 'monitor';
/** Role of the data source the stock Terminus check uses: its queries are caused by probes. */
export const STOCK_ROLE = 'stock';

/**
 * The test kit's throwaway PostgreSQL with pg_stat_statements loaded, a `bench` database and one role per
 * client, so the queries each side sends are counted exactly, at once, by the server itself
 * (pg_stat_database counters are flushed by each backend up to 10 s late).
 */
export async function startBenchPostgres(): Promise<PostgresServer> {
  const server = await PostgresServer.start();
  await appendFile(path.join(server.dir, 'data', 'postgresql.conf'), "\nshared_preload_libraries = 'pg_stat_statements'\n");
  await server.restart();
  await server.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  for (const role of [MONITOR_ROLE, STOCK_ROLE]) await server.query(`CREATE ROLE ${role} LOGIN`);
  await server.query(`CREATE DATABASE ${BENCH_DATABASE}`);
  return server;
}

export async function resetQueryCounts(server: PostgresServer): Promise<void> {
  await server.query('SELECT pg_stat_statements_reset()');
}

/** Statements executed in the bench database since the last reset, by role. */
export async function queryCounts(server: PostgresServer): Promise<Record<string, number>> {
  const rows = await server.query<{ role: string; calls: string }>(
    `SELECT r.rolname AS role, sum(s.calls)::text AS calls
       FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid JOIN pg_database d ON d.oid = s.dbid
      WHERE d.datname = $1 GROUP BY r.rolname`,
    [BENCH_DATABASE],
  );
  return Object.fromEntries(rows.map((row) => [row.role, Number(row.calls)]));
}
