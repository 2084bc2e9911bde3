/**
 * No planted secret leaves the process, through a full fault run of every kind on real servers.
 *
 * A child app (fixtures/secrets.app.ts) holds a connection of every kind, each configured with secrets
 * that hold spaces, quotes, '@', '%', '/', ':' and unicode, and three whose logins are refused. The
 * parent breaks them for real (RST, silent blackhole and FIN through chaos proxies, a kill of the IMAP
 * processes, a termination of the PostgreSQL backends) and lets them recover, then searches everything
 * the app printed and answered for every secret in every form a driver or a log may write it: the text
 * and JSON logs at every level, every event and snapshot, the health bodies at every detail level (the
 * built-in routes and the Terminus indicator), the Prometheus metrics, and util.inspect / JSON.stringify
 * of the registry, handles, probes and indicator.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ChaosProxy } from './kit/chaos.proxy.js';
import type { DovecotServer } from './kit/dovecot.server.js';
import type { PostgresServer } from './kit/postgres.server.js';
import { sharedActiveMq, sharedDovecot, sharedPostgres, sharedRabbitMq } from './kit/shared-servers.js';
import type { SecretsAppConfig } from './fixtures/secrets.app.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'secrets.app.js');
const tag = () => randomBytes(4).toString('hex');

const IMAP_USER = `leak-check-${tag()}`;
/** Every secret the app is configured with. Each is unique to this run, so a match can only be a leak. */
const SECRETS = {
  pgPassword: `pg p@ss:/wörd%2B"' ${tag()}`,
  pgRefused: `n0 such r0le+pw= ${tag()}`,
  imapPassword: `imap "pa ss" w@rd % ${tag()}`,
  imapRefused: `wr0ng imap pässword ${tag()}`,
  stompPasscode: `st0mp/pass code@% ${tag()}`,
  stompToken: `tok_${randomBytes(12).toString('base64url')}`,
  rabbitRefused: `rabbit wr0ng passc0de ${tag()}`,
  apiKey: `ak_live_${randomBytes(12).toString('hex')}`,
};
/** The faults every proxied connection goes through, each followed by a recovery. */
const PROXY_FAULTS = ['reset', 'blackhole', 'fin'] as const;
/** Generous: two cores, other suites beside. */
const WITHIN_MS = 30_000;

/** The ways a secret may be written: as is, URL-encoded, JSON-escaped, and base64 alone or inside SASL PLAIN and Basic. */
function writtenForms(secret: string, user: string): string[] {
  const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
  return [
    secret,
    encodeURIComponent(secret),
    JSON.stringify(secret).slice(1, -1),
    base64(secret),
    base64(`\0${user}\0${secret}`),
    base64(`${user}:${secret}`),
  ];
}

interface RunningApp {
  readonly child: ChildProcess;
  readonly url: string;
  /** Everything it printed, stdout and stderr. */
  output(): string;
}

async function startApp(config: SecretsAppConfig): Promise<RunningApp> {
  const child = spawn(process.execPath, [fixture], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', CH_SECRETS_APP: JSON.stringify(config) },
  });
  let printed = '';
  child.stdout!.on('data', (chunk: Buffer) => (printed += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (printed += chunk.toString('utf8')));
  const deadline = Date.now() + WITHIN_MS;
  let port: string | undefined;
  while (!(port = /LISTENING (\d+)/.exec(printed)?.[1])) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the app did not start:\n${printed}`);
    await sleep(50);
  }
  return { child, url: `http://127.0.0.1:${port}`, output: () => printed };
}

describe('no secret leaves the process through a full fault run of every kind', () => {
  let postgres: PostgresServer;
  let dovecot: DovecotServer;
  const proxies: Record<'pg' | 'imap' | 'stomp' | 'tcp', ChaosProxy> = {} as never;
  let app: RunningApp;
  /** Every HTTP answer the app gave, in full. */
  const answers: string[] = [];

  const get = async (route: string): Promise<{ status: number; text: string }> => {
    const response = await fetch(`${app.url}${route}`);
    const text = await response.text();
    answers.push(`${route} ${response.status} ${text}`);
    return { status: response.status, text };
  };
  /** Reads every exposed route once, so that each state of the run is in what gets searched. */
  const readEverything = async () => {
    for (const route of ['/health', '/health/live', '/health/ready', '/health/startup', '/terminus-full', '/terminus', '/metrics']) await get(route);
  };
  const states = async (): Promise<Record<string, { state: string; lastError?: string }>> =>
    (JSON.parse((await get('/health')).text) as { details: Record<string, { state: string; lastError?: string }> }).details;
  const waitUntil = async (what: string, names: readonly string[], predicate: (state: string) => boolean) => {
    const deadline = Date.now() + WITHIN_MS;
    for (;;) {
      const now = await states();
      if (names.every((name) => predicate(now[name]?.state ?? 'missing'))) return;
      if (Date.now() > deadline) assert.fail(`${what}: ${JSON.stringify(now)}`);
      await sleep(100);
    }
  };
  /** Waits until each of `names` went down after `since`, as its events say (a reset heals too fast to poll). */
  const waitUntilLost = async (what: string, names: readonly string[], since: number) => {
    const deadline = Date.now() + WITHIN_MS;
    for (;;) {
      const lost = new Set(
        [...app.output().matchAll(/^EVENT (.*)$/gm)]
          .map(([, line]) => JSON.parse(line!) as { type: string; name: string; to?: string; at: number })
          .filter((event) => event.type === 'state' && event.to === 'down' && event.at >= since)
          .map((event) => event.name),
      );
      if (names.every((name) => lost.has(name))) return;
      if (Date.now() > deadline) assert.fail(`${what}: only ${[...lost].join(', ')} went down`);
      await sleep(50);
    }
  };
  const serving = (state: string) => state === 'up' || state === 'degraded';
  const REQUIRED = ['db', 'mail-imapflow', 'mail-node-imap', 'broker', 'link'];

  before(async () => {
    const [pg, mail, activemq, rabbit] = await Promise.all([sharedPostgres(), sharedDovecot(), sharedActiveMq(), sharedRabbitMq()]);
    postgres = pg;
    dovecot = mail;
    await dovecot.addUser(IMAP_USER, SECRETS.imapPassword);
    proxies.pg = await ChaosProxy.start(pg.host, pg.port);
    proxies.imap = await ChaosProxy.start(mail.host, mail.port);
    proxies.stomp = await ChaosProxy.start(activemq.host, activemq.port);
    proxies.tcp = await ChaosProxy.start(pg.host, pg.port);
    app = await startApp({
      pg: {
        url: `postgres://postgres:${encodeURIComponent(SECRETS.pgPassword)}@127.0.0.1:${proxies.pg.port}/postgres`,
        badUrl: `postgres://no_such_role:${encodeURIComponent(SECRETS.pgRefused)}@${pg.host}:${pg.port}/postgres`,
      },
      imap: { host: '127.0.0.1', port: proxies.imap.port, user: IMAP_USER, pass: SECRETS.imapPassword, badPass: SECRETS.imapRefused },
      stomp: { port: proxies.stomp.port, login: 'app', passcode: SECRETS.stompPasscode, token: SECRETS.stompToken },
      rabbit: { port: rabbit.port, badPasscode: SECRETS.rabbitRefused },
      tcp: { port: proxies.tcp.port },
      apiKey: SECRETS.apiKey,
    });
  });

  after(async () => {
    if (app && app.child.exitCode === null) app.child.kill('SIGKILL');
    await Promise.all(Object.values(proxies).map((proxy) => proxy.close()));
  });

  it('breaks every connection for real, lets it recover, and finds no secret in anything the app showed', async (t) => {
    await waitUntil('every required connection up', REQUIRED, serving);
    await readEverything();

    for (const fault of PROXY_FAULTS) {
      const since = Date.now();
      for (const proxy of Object.values(proxies)) proxy[fault]();
      // A tcp connection's beat is a fresh connect, which the proxy itself accepts even while it blackholes.
      await waitUntilLost(`down after ${fault}`, fault === 'blackhole' ? REQUIRED.filter((name) => name !== 'link') : REQUIRED, since);
      await readEverything();
      for (const proxy of Object.values(proxies)) proxy.pass();
      await waitUntil(`up after ${fault}`, REQUIRED, serving);
    }
    // Real kills on the servers' side: dovecot's imap processes (FIN), PostgreSQL's backends (the probe's among them).
    const since = Date.now();
    await dovecot.kill(IMAP_USER);
    await postgres.terminateBackends();
    await waitUntilLost('down after the kills', ['mail-imapflow', 'mail-node-imap', 'db'], since);
    await readEverything();
    await waitUntil('up after the kills', REQUIRED, serving);

    // The refused logins and the key-echoing ping are down for their real reasons: the search below is not vacuous.
    const final = await states();
    assert.match(final['db-refused']!.lastError ?? '', /no_such_role/);
    assert.match(final['mail-refused']!.lastError ?? '', /refused authentication|AUTHENTICATIONFAILED/i);
    assert.match(final['broker-refused']!.lastError ?? '', /Access refused/i);
    assert.match(final.api!.lastError ?? '', /answered 401 for key/);
    await readEverything();
    const inspected = (await get('/inspect')).text;
    assert.match(inspected, /ConnectionHandle/);

    app.child.kill('SIGTERM');
    await once(app.child, 'exit');
    const printed = app.output();
    assert.match(printed, /"level":"warn"/, 'the JSON logger wrote');
    assert.match(printed, /WARN \[ConnectionHealth\] db: up -> down/, 'the text logger wrote');
    assert.match(printed, /^EVENT /m, 'events were written');

    const everything = [printed, ...answers].join('\n');
    const users: Record<keyof typeof SECRETS, string> = {
      pgPassword: 'postgres',
      pgRefused: 'no_such_role',
      imapPassword: IMAP_USER,
      imapRefused: IMAP_USER,
      stompPasscode: 'app',
      stompToken: 'app',
      rabbitRefused: 'guest',
      apiKey: 'api',
    };
    const leaks = Object.entries(SECRETS).flatMap(([which, secret]) =>
      writtenForms(secret, users[which as keyof typeof SECRETS]).flatMap((form) => {
        const at = everything.indexOf(form);
        return at === -1 ? [] : [`${which} as ${JSON.stringify(form)}: …${everything.slice(Math.max(0, at - 120), at + form.length + 40)}…`];
      }),
    );
    t.diagnostic(`searched ${everything.length} characters (${answers.length} answers, ${printed.split('\n').length} printed lines) for ${Object.keys(SECRETS).length} secrets in 6 forms each`);
    assert.deepEqual(leaks, [], `${leaks.length} leak(s) in ${everything.length} characters of output`);
  });
});
