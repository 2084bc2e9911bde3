/**
 * Start servers once per test run instead of once per test file.
 *
 * The runner (test/run.ts) calls startSharedServers() and passes `env` to its `node --test` child
 * processes; inside them sharedPostgres() attaches to that server. Run a test file alone and
 * sharedPostgres() starts a private server instead, removed when the process exits.
 *
 * A test may kill() or restart() the shared server, since the handle finds the postmaster through
 * its data folder, but must startAgain() it before it ends (an after() hook); sharedPostgres()
 * also starts it again if it finds it down. Such tests must not run beside other files using the
 * same server: run them with --test-concurrency=1 or give them a server of their own.
 */
import { PostgresServer } from './postgres.server.js';

/** The names of the environment variables that describe the shared PostgreSQL. */
export const POSTGRES_ENV = {
  host: 'CH_PG_HOST',
  port: 'CH_PG_PORT',
  /** The server's temporary folder (cluster, socket, log); the postmaster pid is read from it, never passed. */
  dir: 'CH_PG_DIR',
} as const;

export interface SharedServers {
  /** Variables to add to the environment of the test processes. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startSharedServers(): Promise<SharedServers> {
  const postgres = await PostgresServer.start();
  return {
    env: {
      [POSTGRES_ENV.host]: postgres.host,
      [POSTGRES_ENV.port]: String(postgres.port),
      [POSTGRES_ENV.dir]: postgres.dir,
    },
    stop: () => postgres.stop(),
  };
}

let shared: Promise<PostgresServer> | undefined;

/**
 * The run's PostgreSQL, or a private one for this process. Never stop() it in a test: an attached
 * handle ignores stop(), and a private one is removed at exit.
 */
export function sharedPostgres(): Promise<PostgresServer> {
  shared ??= (async () => {
    const server = postgresFromEnv();
    if (!server) return PostgresServer.start();
    // A file that killed the server and failed before starting it again must not fail every file after it.
    if (!server.isRunning()) await server.startAgain();
    return server;
  })();
  return shared;
}

/** A handle on the shared server that `env` describes, or undefined when no runner started one. */
export function postgresFromEnv(env: NodeJS.ProcessEnv = process.env): PostgresServer | undefined {
  const { [POSTGRES_ENV.host]: host, [POSTGRES_ENV.port]: port, [POSTGRES_ENV.dir]: dir } = env;
  return host && port && dir ? PostgresServer.attach({ host, port: Number(port), dir }) : undefined;
}
