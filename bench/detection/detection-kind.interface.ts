import type { DataSource } from 'typeorm';
import type { ConnectionDefinition } from '../../lib/index.js';

/** A real server the harness can crash and start again (the test kit's servers fit as they are). */
export interface FaultServer {
  readonly host: string;
  readonly port: number;
  /** SIGKILL, like a crash: clients get a FIN. */
  kill(): Promise<void>;
  /** Starts it again on the same port; resolves once it answers. */
  startAgain(): Promise<void>;
  stop(): Promise<void>;
}

/** When and how a client library reported a loss on its own. */
export interface Noticed {
  at: number;
  how: string;
}

/** One raw client, connected with its library's defaults and used like an app would, watched for a loss. */
export interface RawWatch {
  /** Resolves the first time the library reports the loss by itself (an event, a rejected call). */
  readonly noticed: Promise<Noticed>;
  /** Ends it, by force if the connection hangs. */
  close(): Promise<void>;
}

export interface RawLibrary {
  /** e.g. 'pg.Client', shown in the table. */
  name: string;
  /** What "used like an app" means for it, shown in the notes. */
  usage: string;
  watch(host: string, port: number): Promise<RawWatch>;
}

/** What the harness monitors for one trial: a definition for createAdapter, plus its data source if any. */
export interface MonitoredConnection {
  definition: ConnectionDefinition;
  /** For kind 'typeorm': the data source the definition names (createAdapter takes it resolved). */
  dataSource?: DataSource;
  /**
   * Ends what the kind built for this trial and the package leaves alone (the app's client of a watched
   * connection); called after the monitor closed.
   */
  dispose?(): Promise<void>;
}

/**
 * A server-side kick: the server itself closes its client connections and stays up (Redis CLIENT KILL,
 * RabbitMQ's close_connection). A kind that has one gets the fault 'kick (<how>)'.
 */
export interface ServerKick<S extends FaultServer> {
  /** The server's command, e.g. 'CLIENT KILL', shown in the fault's name. */
  how: string;
  /**
   * Closes every client connection of `server`. May resolve to the moment (stats' now()) the kick reached
   * the clients, when the command's own start-up would otherwise count as their delay (rabbitmqctl starts an
   * Erlang VM first: 0.8 to 3.5 s on a busy machine); 'down' and 'up' then count from that moment.
   */
  run(server: S): Promise<unknown>;
}

/**
 * One row group of the detection table: a server and a client library. To add a kind (IMAP on dovecot
 * with either client, STOMP on ActiveMQ), write one of these and list it in DETECTION_KINDS.
 */
export interface DetectionKind<S extends FaultServer = FaultServer> {
  /** Row label, e.g. 'PostgreSQL 15 · TypeORM'. */
  label: string;
  /** The server alone, e.g. 'PostgreSQL 15': labels the rows of the raw libraries. */
  server: string;
  /** Starts a fresh server of its own (called twice: once for the package's trials, once for the raw clients). */
  startServer(): Promise<S>;
  /**
   * The connection the package monitors, reaching the server at host:port (the server or a chaos proxy);
   * built afresh for each trial. Absent while the package has no adapter for the kind: then only the raw
   * libraries' baseline runs.
   */
  connection?(host: string, port: number): MonitoredConnection | Promise<MonitoredConnection>;
  /** The client libraries used alone, with their defaults, for comparison; empty when another kind of the same server has them. */
  raw: RawLibrary[];
  /** The server's own kick, if it has one: adds the fault 'kick (<how>)' for the package and the raw libraries. */
  kick?: ServerKick<S>;
  /** Fault names to run; default every fault (and the kick, if any). */
  faults?: string[];
}
