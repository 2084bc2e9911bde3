/**
 * Captures test/fixtures/secret-corpus.json: what the real servers and clients this package runs against
 * print while a login carries a secret. Run it again when a client or server changes:
 *
 *   npm run corpus
 *
 * It starts its own PostgreSQL (password checks on), dovecot (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER), ActiveMQ
 * (a checked user) and RabbitMQ from the test kit, plus small local HTTP and TLS servers, and runs each
 * client with a known user and secret. Every output is stored with the secret replaced by a placeholder
 * (see secret-corpus.ts) in the encoding the source applied, which each capture declares. Each capture then
 * runs a second time with a hostile secret (quotes, backslash, `:@/%+&=`, space, unicode) and checks that
 * its placeholders, rendered with that secret, are what the source really printed: a wrong declared
 * encoding fails the capture instead of storing a corpus that tests the wrong form.
 */
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { inspect, promisify } from 'node:util';
import { Client as StompClient, type IFrame } from '@stomp/stompjs';
import Imap from 'imap';
import { ImapFlow } from 'imapflow';
import pg from 'pg';
import { DataSource } from 'typeorm';
import WebSocket from 'ws';
import { StompTcpSocket } from '../../lib/adapters/stomp/stomp-tcp.socket.js';
import { ActiveMqServer } from './activemq.server.js';
import { DovecotServer } from './dovecot.server.js';
import { PostgresServer } from './postgres.server.js';
import { RabbitMqServer } from './rabbitmq.server.js';
import {
  CORPUS_FILE,
  credentialBlobs,
  ENCODINGS,
  placeholdersOf,
  renderPlaceholder,
  type CorpusEntry,
  type Credentials,
  type SecretCorpus,
  type SecretPlace,
} from './secret-corpus.js';

const execFileAsync = promisify(execFile);

/** The secret of the stored capture: plain, so that every encoding of it is itself and it is found wherever it went. */
const CAPTURE: Credentials = { user: 'cpt-alice', secret: 'Cpt-Secret-8xQz2' };
/** The secret of the check run: what each declared encoding must have turned it into. No `'`: util.inspect would switch quotes. */
const HOSTILE: Credentials = { user: 'cpt-alice', secret: 'Hx"q\\u:o t@e/d%+&=ä密😀-9Zk' };
/** For captures of a URL with the password as typed: a `/`, `@`, `?`, `#` or `\\` would end the userinfo and change the message. */
const HOSTILE_IN_URL: Credentials = { user: 'cpt-alice', secret: 'Hx"q:o t%+&=ä密😀-9Zk' };
/** For HTTP headers, which hold bytes (fetch refuses a character above U+00FF). */
const HOSTILE_ASCII: Credentials = { user: 'cpt-alice', secret: 'Hx"q\\u:o t@e/d%+&=-9Zk' };
/** The password the servers really accept for the user, so that a capture of a failed login really fails. */
const RIGHT_PASSWORD = 'the-right-password';

interface Part {
  secretAt: SecretPlace;
  /** For a literal part (no placeholders): the whole password the client was given. */
  password?: string;
  /** The encodings the source applied to the secret here, e.g. ['imap']; none: written as given. */
  encodings?: readonly string[];
  /** The '...' literals of the text were printed by util.inspect: a placeholder in one gets `|inspect` too. */
  inspected?: boolean;
  /** The printed text with these credentials. */
  text: string;
}

interface Capture {
  id: string;
  source: string;
  captured: string;
  /** The credentials of the check run. Default HOSTILE. */
  hostile?: Credentials;
  run(credentials: Credentials): Promise<Record<string, Part>>;
}

interface Servers {
  postgres: PostgresServer;
  dovecot: DovecotServer;
  activemq: ActiveMqServer;
  rabbitmq: RabbitMqServer;
  tls: TlsFixture;
  http: HttpFixture;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** What a logger prints for an error (util.inspect), without the stack frames, which hold this machine's paths. */
function printed(error: unknown): string {
  return inspect(error, { depth: 4 })
    .split('\n')
    .filter((line) => !/^\s+at /.test(line))
    .join('\n');
}

/** The error `action` fails with; when it does not fail, a text saying so, which the checks then report. */
async function failure(action: () => unknown): Promise<unknown> {
  try {
    await action();
  } catch (error) {
    return error;
  }
  return '(no failure)';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A TCP relay that records the lines of both directions in the order they passed, as a wire capture ("follow TCP stream") shows them. */
class WireTap {
  readonly lines: string[] = [];
  private readonly sockets = new Set<net.Socket>();
  private constructor(private readonly server: net.Server) {}

  static async start(host: string, port: number): Promise<WireTap> {
    const server = net.createServer();
    const tap = new WireTap(server);
    server.on('connection', (client) => {
      const upstream = net.connect({ host, port });
      tap.sockets.add(client).add(upstream);
      const record = (chunk: Buffer) => {
        for (const line of chunk.toString('utf8').split('\r\n')) if (line) tap.lines.push(line);
      };
      client.on('data', record);
      upstream.on('data', record);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return tap;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A TLS server with a self-signed certificate for localhost and 127.0.0.1, and an encrypted copy of its key. */
class TlsFixture {
  private constructor(
    private readonly server: tls.Server,
    readonly cert: string,
    readonly encryptedKey: string,
    private readonly dir: string,
  ) {}

  static async start(): Promise<TlsFixture> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ch-corpus-tls-'));
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    const subject = ['-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'];
    await execFileAsync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', ...subject, '-keyout', key, '-out', cert]);
    const encrypted = path.join(dir, 'key.enc.pem');
    await execFileAsync('openssl', ['pkey', '-in', key, '-aes256', '-passout', `pass:${RIGHT_PASSWORD}`, '-out', encrypted]);
    const [keyPem, certPem, encryptedPem] = await Promise.all([readFile(key, 'utf8'), readFile(cert, 'utf8'), readFile(encrypted, 'utf8')]);
    const server = tls.createServer({ key: keyPem, cert: certPem }, (socket) => socket.end());
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new TlsFixture(server, certPem, encryptedPem, dir);
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    await new Promise((resolve) => this.server.close(resolve));
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * An HTTP server that records each request head as it arrived, answers a Digest challenge to a request
 * without credentials on /digest, and 200 otherwise (also as a forward proxy would).
 */
class HttpFixture {
  readonly heads: string[] = [];
  readonly parsedHeaders: string[] = [];
  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<HttpFixture> {
    const server = http.createServer();
    const fixture = new HttpFixture(server);
    server.on('connection', (socket) => {
      let head = '';
      socket.on('data', (chunk: Buffer) => {
        head += chunk.toString('utf8');
        const end = head.indexOf('\r\n\r\n');
        if (end >= 0) {
          fixture.heads.push(head.slice(0, end));
          head = head.slice(end + 4);
        }
      });
    });
    server.on('request', (request, response) => {
      fixture.parsedHeaders.push(inspect(request.headers));
      if (request.url?.endsWith('/digest') && !request.headers.authorization) {
        response.writeHead(401, { 'www-authenticate': 'Digest realm="corpus", qop="auth", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"' });
      } else {
        response.writeHead(200, { 'content-type': 'text/plain' });
      }
      response.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fixture;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  lastHead(): string {
    return this.heads.at(-1) ?? '';
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** curl -v's trace of the request it sent (`> ` lines) and what it said about auth (`* ` lines that name it). */
async function curlTrace(args: string[]): Promise<string> {
  const { stderr } = await execFileAsync('curl', ['-sv', '-o', '/dev/null', '--max-time', '5', ...args]).catch((error: { stderr?: string }) => ({ stderr: error.stderr ?? '' }));
  return stderr
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.startsWith('> ') || /^\* .*(auth|user)/i.test(line))
    .join('\n')
    .trim();
}

/**
 * OAUTHBEARER (RFC 7628) carries the server's host and port beside the token; the relay's port changes at
 * every run, so the stored message names the standard port, as a client of a real server would.
 */
function withStandardPort(transcript: string): string {
  return transcript.replace(/(AUTHENTICATE OAUTHBEARER )(\S+)/, (_, command: string, blob: string) =>
    command + Buffer.from(Buffer.from(blob, 'base64').toString('utf8').replace(/\x01port=\d+\x01/, '\x01port=143\x01')).toString('base64'),
  );
}

/** Runs node-imap until it is ready or fails; returns its debug lines and the failure. */
async function nodeImap(config: Partial<Imap.Config>): Promise<{ debug: string[]; error?: Error }> {
  const debug: string[] = [];
  const imap = new Imap({ ...config, debug: (line: string) => debug.push(line) } as Imap.Config);
  const error = await new Promise<Error | undefined>((resolve) => {
    imap.once('error', resolve);
    imap.once('ready', () => resolve(undefined));
    imap.connect();
  });
  imap.end();
  return { debug, error };
}

/** Runs imapflow with a logger that records what pino would print (one JSON object per line). */
async function imapFlow(options: ConstructorParameters<typeof ImapFlow>[0]): Promise<{ log: string[]; error?: Error }> {
  const log: string[] = [];
  const record = (level: string) => (entry: object) => log.push(JSON.stringify({ level, ...entry }));
  const logger = { trace: () => undefined, debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error'), fatal: record('fatal') };
  const client = new ImapFlow({ ...options, logger } as ConstructorParameters<typeof ImapFlow>[0]);
  client.on('error', () => undefined);
  let error: Error | undefined;
  try {
    await client.connect();
    await client.logout();
  } catch (failed) {
    error = failed as Error;
  }
  return { log, error };
}

/** Runs a stompjs client until CONNECTED or ERROR; returns its debug lines and the ERROR frame. */
async function stompjs(options: ConstructorParameters<typeof StompClient>[0], subscribeTo?: string): Promise<{ debug: string[]; error?: IFrame }> {
  const debug: string[] = [];
  const client = new StompClient({ ...options, reconnectDelay: 0, heartbeatIncoming: 0, heartbeatOutgoing: 0, debug: (line) => debug.push(line) });
  const error = await new Promise<IFrame | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 10_000);
    client.onStompError = (frame) => {
      clearTimeout(timer);
      resolve(frame);
    };
    client.onConnect = () => {
      if (!subscribeTo) {
        clearTimeout(timer);
        resolve(undefined);
        return;
      }
      client.subscribe(subscribeTo, () => undefined);
    };
    client.activate();
  });
  await client.deactivate({ force: true });
  return { debug, error };
}

/** The debug entry that starts so; when there is none, a text saying so, which the checks then report. */
function debugEntry(lines: string[], starts: string): string {
  const found = lines.find((line) => line.startsWith(starts));
  return found === undefined ? `(no debug entry starting with ${JSON.stringify(starts)} in: ${JSON.stringify(lines)})` : found.replace(/\0/g, '^@');
}

// ---------------------------------------------------------------------------------------------------------
// The captures

function captures(servers: Servers): Capture[] {
  const { postgres, dovecot, activemq, rabbitmq } = servers;
  const pgSource = 'pg 8.23.1 (pg-connection-string 2.14.1) against PostgreSQL 15, Node 20';
  const typeormSource = 'TypeORM 1.1 with pg 8.23.1 against PostgreSQL 15';
  return [
    {
      id: 'pg',
      source: pgSource,
      captured: 'new pg.Client({ host, port, user, password, database }).connect(): error.message and util.inspect(error) without stack frames',
      async run({ user, secret }) {
        const connect = (password: string, database: string) =>
          failure(async () => {
            const client = new pg.Client({ host: postgres.host, port: postgres.port, user, password, database });
            client.on('error', () => undefined);
            try {
              await client.connect();
            } finally {
              await client.end().catch(() => undefined);
            }
          });
        const wrong = await connect(secret, 'postgres');
        const database = await connect(RIGHT_PASSWORD, `${user}-orders`);
        return {
          'auth-failed': { secretAt: 'absent', text: messageOf(wrong) },
          'auth-failed-inspect': { secretAt: 'absent', text: printed(wrong) },
          'bad-database': { secretAt: 'absent', text: messageOf(database) },
        };
      },
    },
    {
      id: 'pg-url',
      source: pgSource,
      captured: 'new pg.Client({ connectionString }) with a bad port in the URL: util.inspect(error) (pg-connection-string redacts the input)',
      async run({ user, secret }) {
        const error = await failure(() => new pg.Client({ connectionString: `postgres://${user}:${encodeURIComponent(secret)}@${postgres.host}:99999/postgres` }));
        return { 'invalid-url-redacted': { secretAt: 'absent', text: printed(error) } };
      },
    },
    {
      id: 'pg-pool',
      source: pgSource,
      captured: 'util.inspect(new pg.Pool({ host, port, user, password, database }).options), as a log of the pool prints it',
      async run({ user, secret }) {
        const pool = new pg.Pool({ host: postgres.host, port: postgres.port, user, password: secret, database: 'postgres' });
        const text = inspect(pool.options);
        await pool.end();
        // pg keeps the password out of the enumerable options, on purpose.
        return { 'options-inspect': { secretAt: 'absent', text } };
      },
    },
    {
      id: 'node-url',
      hostile: HOSTILE_IN_URL,
      source: 'Node 20.20 WHATWG URL (the parser pg, ws and fetch use)',
      captured: "new URL('postgres://user:password@host:99999/db') with the password as typed: util.inspect(error) shows `input`",
      async run({ user, secret }) {
        const error = await failure(() => new URL(`postgres://${user}:${secret}@${postgres.host}:99999/postgres`));
        return { 'invalid-url-input': { secretAt: 'pattern', inspected: true, text: printed(error) } };
      },
    },
    {
      id: 'typeorm',
      source: typeormSource,
      captured: 'util.inspect(dataSource.options) as a log of the data source prints it; dataSource.initialize() with a wrong password: error.message',
      async run({ user, secret }) {
        const withUrl = new DataSource({ type: 'postgres', url: `postgres://${user}:${encodeURIComponent(secret)}@${postgres.host}:${postgres.port}/postgres` });
        const withPassword = new DataSource({ type: 'postgres', host: postgres.host, port: postgres.port, username: user, password: secret, database: 'postgres' });
        const error = await failure(() => withPassword.initialize());
        return {
          'options-url-inspect': { secretAt: 'pattern', encodings: ['url'], inspected: true, text: inspect(withUrl.options) },
          'options-password-inspect': { secretAt: 'pattern', inspected: true, text: inspect(withPassword.options) },
          'initialize-auth-failed': { secretAt: 'absent', text: messageOf(error) },
        };
      },
    },
    {
      id: 'libpq',
      hostile: HOSTILE_IN_URL,
      source: 'psql / libpq 15 (Debian) against PostgreSQL 15',
      captured: 'psql "<URI>" -c "select 1": what it printed on stderr',
      async run({ user, secret }) {
        const psql = async (uri: string, env: Record<string, string> = {}) => {
          const result = await execFileAsync('psql', [uri, '-c', 'select 1'], { env: { ...process.env, ...env } }).catch((error: { stderr?: string }) => ({ stderr: error.stderr ?? '' }));
          return result.stderr.trim();
        };
        const base = `${postgres.host}:${postgres.port}/postgres`;
        return {
          'auth-failed': { secretAt: 'absent', text: await psql(`postgresql://${user}@${base}`, { PGPASSWORD: secret }) },
          'uri-ipv6-echo': { secretAt: 'pattern', text: await psql(`postgresql://${user}:${secret}@[::1/postgres`) },
          'uri-query-parameter': { secretAt: 'absent', text: await psql(`postgresql://${user}:${encodeURIComponent(secret)}@${base}?passwd=x`) },
        };
      },
    },
    {
      id: 'mysql',
      source: 'TypeORM 1.1 (type mysql, no mysql driver installed); Node 20.20 WHATWG URL',
      captured: "new URL('mysql://user:password@host:3306/shop'): its href and util.inspect(url); new DataSource({ type: 'mysql', url }): error.message",
      async run({ user, secret }) {
        const url = new URL(`mysql://${user}@127.0.0.1:3306/shop`);
        url.password = secret;
        const error = await failure(() => new DataSource({ type: 'mysql', url: url.href }));
        return {
          href: { secretAt: 'pattern', encodings: ['userinfo'], text: url.href },
          'url-inspect': { secretAt: 'pattern', encodings: ['userinfo'], inspected: true, text: inspect(url) },
          'missing-driver': { secretAt: 'absent', text: messageOf(error) },
        };
      },
    },
    {
      id: 'sqljs',
      source: 'TypeORM 1.1 with sql.js 1.x',
      captured: "new DataSource({ type: 'sqljs', database: <bytes that are no database> }).initialize() and one with location in a missing folder: error.message",
      async run({ user }) {
        const bad = await failure(async () => {
          const garbage = new DataSource({ type: 'sqljs', database: new Uint8Array(Buffer.from('these bytes are not an SQLite file, not at all')) });
          await garbage.initialize();
          try {
            await garbage.query('SELECT 1 FROM sqlite_master');
          } finally {
            await garbage.destroy();
          }
        });
        const location = new DataSource({ type: 'sqljs', location: `/nonexistent/home/${user}/orders.sqlite`, autoSave: true });
        await location.initialize();
        const save = await failure(() => location.query('CREATE TABLE t (id INTEGER)').then(() => (location.driver as unknown as { autoSave(): Promise<void> }).autoSave()));
        await location.destroy().catch(() => undefined);
        return {
          'not-a-database': { secretAt: 'absent', text: messageOf(bad) },
          'save-location': { secretAt: 'absent', text: messageOf(save) },
        };
      },
    },
    {
      id: 'node-imap',
      source: 'node-imap (imap) 0.8.19 against dovecot 2.3.19',
      captured: 'new Imap({ user, password, debug }) with a wrong password: the debug callback lines and the error',
      async run({ user, secret }) {
        const { debug, error } = await nodeImap({ host: dovecot.host, port: dovecot.port, user, password: secret });
        return {
          'debug-login': { secretAt: 'pattern', encodings: ['imap'], inspected: true, text: debugEntry(debug, "=> 'A1 LOGIN") },
          'debug-transcript': { secretAt: 'pattern', encodings: ['imap'], inspected: true, text: debug.filter((line) => !line.startsWith('<= \'* CAPABILITY')).join('\n') },
          'auth-failed': { secretAt: 'absent', text: `${messageOf(error)} ${JSON.stringify(error)}` },
        };
      },
    },
    {
      id: 'node-imap-xoauth2',
      source: 'node-imap (imap) 0.8.19 against dovecot 2.3.19 (AUTH=XOAUTH2 offered)',
      captured: 'new Imap({ user, xoauth2: base64(user=..^Aauth=Bearer <token>^A^A), debug }) with a token dovecot refuses: the debug line of the command',
      async run({ user, secret }) {
        const { debug } = await nodeImap({ host: dovecot.host, port: dovecot.port, user, xoauth2: credentialBlobs({ user, secret }).xoauth2 } as Partial<Imap.Config>);
        return { 'debug-authenticate': { secretAt: 'pattern', text: debugEntry(debug, "=> 'A1 AUTHENTICATE") } };
      },
    },
    {
      id: 'imapflow',
      source: 'imapflow 2.1.2 against dovecot 2.3.19',
      captured: 'new ImapFlow({ auth, logger }) with a wrong password: the logger entries as pino prints them (one JSON per line), and the error',
      async run({ user, secret }) {
        const plain = await imapFlow({ host: dovecot.host, port: dovecot.port, secure: false, auth: { user, pass: secret } });
        const login = await imapFlow({ host: dovecot.host, port: dovecot.port, secure: false, auth: { user, pass: secret, loginMethod: 'LOGIN' } } as ConstructorParameters<typeof ImapFlow>[0]);
        const oauth = await imapFlow({ host: dovecot.host, port: dovecot.port, secure: false, auth: { user, accessToken: secret } });
        const lines = (log: string[], match: RegExp) => log.filter((line) => match.test(line)).join('\n');
        return {
          'log-authenticate-plain': { secretAt: 'absent', text: lines(plain.log, /AUTHENTICATE|AUTH=PLAIN|AUTHENTICATIONFAILED/) },
          'log-login': { secretAt: 'absent', text: lines(login.log, /"\d+ LOGIN /) },
          'log-oauthbearer': { secretAt: 'absent', text: lines(oauth.log, /OAUTHBEARER/) },
          'auth-failed': { secretAt: 'absent', text: `${messageOf(plain.error)} ${JSON.stringify(plain.error)}` },
        };
      },
    },
    {
      id: 'imap-wire',
      source: 'imapflow 2.1.2 and node-imap 0.8.19 against dovecot 2.3.19',
      captured:
        'a TCP relay between client and dovecot recording the lines of both directions as they passed (CRLF-separated), as a wire capture shows the login; ' +
        "in the OAUTHBEARER message the relay's random port is replaced by 143",
      async run({ user, secret }) {
        const tap = await WireTap.start(dovecot.host, dovecot.port);
        const session = async (run: () => Promise<unknown>) => {
          tap.lines.length = 0;
          await run();
          return tap.lines.filter((line) => !/^\* (OK|CAPABILITY|ID)|^\d+ ID |^\d+ OK ID|CAPABILITY$|^A0 OK/.test(line)).join('\r\n');
        };
        const port = tap.port;
        const plain = await session(() => imapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass: secret } }));
        const login = await session(() => imapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass: secret, loginMethod: 'AUTH=LOGIN' } } as ConstructorParameters<typeof ImapFlow>[0]));
        const oauth = withStandardPort(await session(() => imapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, accessToken: secret } })));
        const nodeImapLogin = await session(() => nodeImap({ host: '127.0.0.1', port, user, password: secret }));
        await tap.close();
        const continuation = plain.split('\r\n').find((line) => /^[A-Za-z0-9+/]{8,}={0,2}$/.test(line));
        return {
          'authenticate-plain': { secretAt: 'pattern', text: plain },
          'authenticate-plain-continuation': { secretAt: 'told', text: continuation ?? '' },
          'authenticate-login': { secretAt: 'pattern', text: login },
          'authenticate-oauthbearer': { secretAt: 'pattern', text: oauth },
          login: { secretAt: 'pattern', encodings: ['imap'], text: nodeImapLogin },
        };
      },
    },
    {
      id: 'activemq',
      source: '@stomp/stompjs 7.5 over the package\'s STOMP TCP socket against ActiveMQ 5.17 (simpleAuthenticationPlugin)',
      captured: 'new Client({ connectHeaders: { login, passcode }, debug }) with a wrong passcode: the debug entries of the CONNECT and ERROR frames, and JSON.stringify of the ERROR frame',
      async run({ user, secret }) {
        const factory = () => new StompTcpSocket({ host: activemq.host, port: activemq.port, keepAlive: {} });
        const { debug, error } = await stompjs({ webSocketFactory: factory, connectHeaders: { login: user, passcode: secret } });
        const token = await stompjs({ webSocketFactory: factory, connectHeaders: { Authorization: `Bearer ${secret}` } });
        const frame = error ? { command: error.command, headers: error.headers, body: error.body } : undefined;
        return {
          'debug-connect': { secretAt: 'pattern', text: debugEntry(debug, '>>> CONNECT') },
          'debug-error-bad-passcode': { secretAt: 'absent', text: debugEntry(debug, '<<< ERROR') },
          'error-frame-json': { secretAt: 'absent', text: JSON.stringify(frame) },
          'debug-connect-bearer-header': { secretAt: 'pattern', text: debugEntry(token.debug, '>>> CONNECT') },
        };
      },
    },
    {
      id: 'rabbitmq',
      source: '@stomp/stompjs 7.5 over ws 8 (Web-STOMP) against RabbitMQ 3.10',
      captured:
        'new Client({ webSocketFactory: ws, connectHeaders, debug }): a wrong passcode, an unknown virtual host, a bad destination, ' +
        'credentials in the WebSocket URL; the debug entries and JSON.stringify of the ERROR frames',
      async run({ user, secret }) {
        const factory = () => new WebSocket(rabbitmq.webStompUrl, ['v12.stomp', 'v11.stomp', 'v10.stomp']);
        const bad = await stompjs({ webSocketFactory: factory, connectHeaders: { login: user, passcode: secret } });
        const vhost = await stompjs({ webSocketFactory: factory, connectHeaders: { login: user, passcode: RIGHT_PASSWORD, host: 'no-such-vhost' } });
        const destination = await stompjs({ webSocketFactory: factory, connectHeaders: { login: user, passcode: RIGHT_PASSWORD } }, '/nowhere/at/all');
        // ws takes credentials from the URL (as Basic auth); stompjs prints the socket's URL when it closes.
        const inUrl = new URL(rabbitmq.webStompUrl);
        inUrl.username = user;
        inUrl.password = secret;
        const urlCredentials = await stompjs({ webSocketFactory: () => new WebSocket(inUrl.href, ['v12.stomp']), connectHeaders: { login: user, passcode: secret } });
        const json = (frame?: IFrame) => JSON.stringify(frame ? { command: frame.command, headers: frame.headers, body: frame.body } : undefined);
        return {
          'debug-connect': { secretAt: 'pattern', text: debugEntry(bad.debug, '>>> CONNECT') },
          'debug-error-bad-passcode': { secretAt: 'absent', text: debugEntry(bad.debug, '<<< ERROR') },
          'error-frame-bad-passcode-json': { secretAt: 'absent', text: json(bad.error) },
          'error-frame-bad-vhost-json': { secretAt: 'absent', text: json(vhost.error) },
          'debug-error-bad-destination': { secretAt: 'absent', text: debugEntry(destination.debug, '<<< ERROR') },
          'error-frame-bad-destination-json': { secretAt: 'absent', text: json(destination.error) },
          'debug-closed-url-credentials': { secretAt: 'pattern', encodings: ['userinfo'], text: debugEntry(urlCredentials.debug, 'Connection closed to') },
        };
      },
    },
    {
      id: 'ws',
      hostile: HOSTILE_IN_URL,
      source: 'ws 8.18 (the WebSocket of STOMP over WebSocket)',
      captured: "new WebSocket(url) with credentials in the URL and a bad port, and with a typo in the scheme: error.message",
      async run({ user, secret }) {
        const badPort = await failure(() => new WebSocket(`ws://${user}:${secret}@127.0.0.1:99999/ws`));
        const typo = await failure(() => new WebSocket(`ws//${user}:${secret}@127.0.0.1:15674/ws`));
        return {
          'invalid-url': { secretAt: 'pattern', text: messageOf(badPort) },
          'invalid-url-no-scheme': { secretAt: 'told', text: messageOf(typo) },
        };
      },
    },
    {
      id: 'http',
      hostile: HOSTILE_ASCII,
      source: 'curl 7.88 (Debian 12) -v, and Node 20.20 http / fetch (undici) against a local Node HTTP server',
      captured: "curl -sv: its `> ` request lines; the request head as the server received it; fetch()'s error; util.inspect(request.headers) on the server",
      async run({ user, secret }) {
        const base = `http://127.0.0.1:${servers.http.port}`;
        const basic = await curlTrace(['-u', `${user}:${secret}`, `${base}/basic`]);
        const bearer = await curlTrace(['--oauth2-bearer', secret, `${base}/bearer`]);
        const digest = await curlTrace(['--digest', '-u', `${user}:${secret}`, `${base}/digest`]);
        const proxy = await curlTrace(['-x', base, '--proxy-user', `${user}:${secret}`, 'http://orders.internal.invalid/']);
        await new Promise<void>((resolve, reject) => {
          http.get(`${base}/node`, { auth: `${user}:${secret}` }, (response) => response.resume().on('end', resolve)).on('error', reject);
        });
        const nodeHead = servers.http.lastHead();
        await (await fetch(`${base}/fetch`, { headers: { authorization: `Bearer ${secret}` } })).text();
        const fetchHead = servers.http.lastHead();
        const parsed = servers.http.parsedHeaders.at(-1) ?? '';
        const url = new URL(`${base}/`);
        url.username = user;
        url.password = secret;
        const credentials = await failure(() => fetch(url.href));
        return {
          'curl-basic': { secretAt: 'pattern', text: basic },
          'curl-bearer': { secretAt: 'pattern', text: bearer },
          'curl-digest': { secretAt: 'absent', text: digest.split('\n').filter((line) => /Authorization: Digest/.test(line)).join('\n') },
          'curl-proxy-basic': { secretAt: 'pattern', text: proxy },
          'node-request-basic': { secretAt: 'pattern', text: nodeHead },
          'fetch-request-bearer': { secretAt: 'pattern', text: fetchHead },
          'server-headers-inspect': { secretAt: 'pattern', inspected: true, text: parsed },
          'fetch-url-credentials': { secretAt: 'pattern', encodings: ['userinfo'], text: messageOf(credentials) },
        };
      },
    },
    {
      id: 'tls',
      source: 'Node 20.20 tls (OpenSSL 3) against a local TLS server with a self-signed certificate for localhost and 127.0.0.1',
      captured: 'tls.connect() without the CA, with the CA and a wrong servername; tls.createSecureContext() with a wrong key passphrase: util.inspect(error) without stack frames',
      async run({ secret }) {
        const connect = (options: tls.ConnectionOptions) =>
          failure(
            () =>
              new Promise<void>((resolve, reject) => {
                const socket = tls.connect({ host: '127.0.0.1', port: servers.tls.port, ...options }, () => {
                  socket.destroy();
                  resolve();
                });
                socket.on('error', reject);
              }),
          );
        const selfSigned = await connect({});
        const wrongHost = await connect({ ca: servers.tls.cert, servername: 'orders.internal.example' });
        const passphrase = await failure(() => tls.createSecureContext({ key: servers.tls.encryptedKey, cert: servers.tls.cert, passphrase: secret }));
        return {
          'self-signed': { secretAt: 'absent', text: printed(selfSigned) },
          'wrong-host': { secretAt: 'absent', text: messageOf(wrongHost) },
          'bad-passphrase': { secretAt: 'absent', text: printed(passphrase) },
        };
      },
    },
    {
      id: 'dns',
      source: 'Node 20.20 dns / net; node-imap 0.8.19 and imapflow 2.1.2',
      captured:
        "net.connect() to a name that does not resolve: util.inspect(error); node-imap and imapflow given a URL as `host`: node-imap's error.message, util.inspect of imapflow's error",
      async run({ user, secret }) {
        const notFound = await failure(
          () =>
            new Promise((resolve, reject) => {
              const socket = net.connect({ host: `${user}-db.internal.invalid`, port: 5432 }, () => resolve(socket.destroy()));
              socket.on('error', reject);
            }),
        );
        // A URL given where a host name belongs: the resolver's error repeats it.
        const url = new URL(`imaps://${user}@${user}-mail.internal.invalid`);
        url.password = secret;
        const asHost = await nodeImap({ host: url.href, port: 993, user, password: secret, tls: true });
        const asHostFlow = await imapFlow({ host: url.href, port: 993, secure: true, auth: { user, pass: secret } });
        return {
          enotfound: { secretAt: 'absent', text: printed(notFound) },
          'url-as-host-node-imap': { secretAt: 'pattern', encodings: ['userinfo'], text: messageOf(asHost.error) },
          'url-as-host-imapflow': { secretAt: 'pattern', encodings: ['userinfo'], inspected: true, text: printed(asHostFlow.error) },
        };
      },
    },
  ];
}

/**
 * Messages in which a parser cut the password apart, so that only a piece of it was printed. The piece is
 * no placeholder: no scrubber that knows the whole secret finds a piece of it, and no pattern can tell a
 * piece of a password from a host name. Stored as captured, with this capture's own secret, for the note.
 */
function splitCaptures(servers: Servers): Capture[] {
  const { postgres } = servers;
  return [
    {
      id: 'libpq-split',
      source: 'psql / libpq 15 (Debian)',
      captured: 'psql "postgresql://user:pa@ss...@host/db" and "postgresql://user:pa/ss...@host/db" (password not percent-encoded): stderr',
      async run({ user, secret }) {
        const psql = async (uri: string) =>
          (await execFileAsync('psql', [uri, '-c', 'select 1']).catch((error: { stderr?: string }) => ({ stderr: error.stderr ?? '' }))).stderr.trim();
        const at = `pa@${secret}`;
        const slash = `${secret.slice(0, 6)}/${secret.slice(6)}`;
        const percent = `${secret}%zz`;
        return {
          'at-in-password': { secretAt: 'told', password: at, text: await psql(`postgresql://${user}:${at}@${user}-db.internal.invalid:${postgres.port}/postgres`) },
          'slash-in-password': { secretAt: 'told', password: slash, text: await psql(`postgresql://${user}:${slash}@${postgres.host}:${postgres.port}/postgres`) },
          'bad-percent': { secretAt: 'told', password: percent, text: await psql(`postgresql://${user}:${percent}@${postgres.host}:${postgres.port}/postgres`) },
        };
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------------------
// Templating

/** The text with the credentials replaced by placeholders; throws when a piece of the secret would be left. */
function templatize(text: string, credentials: Credentials, encodings: readonly string[], inspected = false): string {
  let result = text;
  const replace = (value: string, placeholder: string) => {
    if (value) result = result.split(value).join(placeholder);
  };
  for (const [name, value] of Object.entries(credentialBlobs(credentials))) replace(value, `{{${name}}}`);
  replace(ENCODINGS.base64(credentials.secret), '{{secret|base64}}');
  replace(ENCODINGS.base64(credentials.user), '{{user|base64}}');
  replace(renderPlaceholder('secret', encodings, credentials), `{{${['secret', ...encodings].join('|')}}}`);
  replace(credentials.user, '{{user}}');
  if (inspected) {
    result = result.replace(/'(?:[^'\\\n]|\\.)*'/g, (literal) => literal.replace(/\{\{((?:secret|sasl|basic|xoauth2|oauthbearer)[^}]*)\}\}/g, '{{$1|inspect}}'));
  }
  for (let i = 0; i + 6 <= credentials.secret.length; i++) {
    const piece = credentials.secret.slice(i, i + 6);
    if (result.includes(piece)) throw new Error(`a piece of the secret (${piece}) is left in:\n${result}`);
  }
  return result;
}

/** The placeholders of `template` that the hostile run did not print as declared. */
function mismatches(template: string, hostileText: string, hostile: Credentials): string[] {
  return placeholdersOf(template)
    .filter(({ name }) => name !== 'user')
    .map(({ name, encodings }) => ({ placeholder: `{{${[name, ...encodings].join('|')}}}`, value: renderPlaceholder(name, encodings, hostile) }))
    .filter(({ value }) => !hostileText.includes(value))
    .map(({ placeholder, value }) => `${placeholder} = ${JSON.stringify(value)}`);
}

async function startServers(): Promise<Servers> {
  const [postgres, dovecot, activemq, rabbitmq, tlsFixture, httpFixture] = await Promise.all([
    PostgresServer.start({ passwords: true }),
    DovecotServer.start({ authMechanisms: ['plain', 'login', 'xoauth2', 'oauthbearer'] }),
    ActiveMqServer.start({ users: [{ login: CAPTURE.user, passcode: RIGHT_PASSWORD }] }),
    RabbitMqServer.start(),
    TlsFixture.start(),
    HttpFixture.start(),
  ]);
  await postgres.createRole(CAPTURE.user, RIGHT_PASSWORD);
  await dovecot.addUser(CAPTURE.user, RIGHT_PASSWORD);
  await rabbitmq.addUser(CAPTURE.user, RIGHT_PASSWORD);
  return { postgres, dovecot, activemq, rabbitmq, tls: tlsFixture, http: httpFixture };
}

async function main(): Promise<void> {
  const servers = await startServers();
  const entries: CorpusEntry[] = [];
  const problems: string[] = [];
  try {
    for (const capture of captures(servers)) {
      const stored = await capture.run(CAPTURE);
      const hostile = await capture.run(capture.hostile ?? HOSTILE);
      for (const [part, { secretAt, encodings = [], inspected, text }] of Object.entries(stored)) {
        const id = `${capture.id}/${part}`;
        if (!text || text.startsWith('(no ')) {
          problems.push(`${id}: ${text || 'printed nothing'}`);
          continue;
        }
        const template = templatize(text, CAPTURE, encodings, inspected);
        if (secretAt !== 'absent' && !/\{\{(secret|sasl|basic|xoauth2|oauthbearer)/.test(template)) problems.push(`${id}: the secret is not in it:\n${text}`);
        if (secretAt === 'absent' && /\{\{(secret|sasl|basic|xoauth2|oauthbearer)/.test(template)) problems.push(`${id}: marked absent, but holds the secret:\n${template}`);
        const wrong = mismatches(template, hostile[part]?.text ?? '', capture.hostile ?? HOSTILE);
        if (wrong.length) problems.push(`${id}: the hostile run did not print ${wrong.join(', ')}:\n${hostile[part]?.text}`);
        entries.push({ id, source: capture.source, captured: capture.captured, secretAt, text: template });
      }
    }
    for (const capture of splitCaptures(servers)) {
      for (const [part, { secretAt, password, text }] of Object.entries(await capture.run(CAPTURE))) {
        entries.push({ id: `${capture.id}/${part}`, source: capture.source, captured: capture.captured, secretAt, password, text: text.split(CAPTURE.user).join('{{user}}') });
      }
    }
  } finally {
    await Promise.all([servers.postgres.stop(), servers.dovecot.stop(), servers.activemq.stop(), servers.rabbitmq.stop(), servers.tls.close(), servers.http.close()]);
  }
  if (problems.length) {
    console.error(`${problems.length} capture(s) failed:\n\n${problems.join('\n\n')}`);
    process.exitCode = 1;
    return;
  }
  const corpus: SecretCorpus = {
    about:
      'Real messages printed by the servers and clients this package runs against while a login carried a secret, captured by ' +
      'test/kit/capture-secret-corpus.ts (npm run corpus). Placeholders: see test/kit/secret-corpus.ts. An entry with a ' +
      '`password` holds no placeholder: a parser cut that password apart, and the text holds what it printed of it.',
    capturedAt: new Date().toISOString(),
    node: process.version,
    entries,
  };
  await writeFile(CORPUS_FILE, `${JSON.stringify(corpus, null, 2)}\n`);
  console.log(`${entries.length} entries written to ${CORPUS_FILE}`);
}

await main();
