import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Imap from 'imap';
import { ImapFlow } from 'imapflow';
import type { Subscription } from 'rxjs';
import { createAdapter } from '../lib/adapters/create-adapter.js';
import { reportToConsole } from '../lib/core/user-callback.js';
import { ConnectionMonitor } from '../lib/core/connection-monitor.js';
import { FakeClock } from '../lib/testing/fake-clock.js';
import { resolveMonitorOptions } from '../lib/core/resolve-monitor-options.js';
import type { ConnectionSnapshot, ImapConnectionDefinition } from '../lib/index.js';
import { ChaosProxy } from './kit/chaos.proxy.js';
import { DovecotServer, type SessionTranscript } from './kit/dovecot.server.js';
import { NetworkNamespace } from './kit/network-namespace.js';
import { sharedDovecot } from './kit/shared-servers.js';
import { activeHandles, leakedHandles, TestApp } from './kit/test-app.js';

// Detection bound under test: intervalMs + timeoutMs, with a generous margin for a busy CI machine.
const INTERVAL_MS = 1_000;
const TIMEOUT_MS = 500;
const BOUND_MS = INTERVAL_MS + TIMEOUT_MS;
const MARGIN_MS = 1_000;
const timing = {
  heartbeat: { intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, connectTimeoutMs: 1_000 },
  reconnect: { initialDelayMs: 200, maxDelayMs: 1_000, maxAttempts: Infinity },
};
const login = { user: DovecotServer.user, pass: DovecotServer.password };
const now = () => performance.timeOrigin + performance.now();
const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'imap-sigterm.app.js');

type Library = 'imapflow' | 'node-imap';
type Endpoint = { host: string; port: number };

/** The connection as a user writes it: host, port and login, the package creates the clients. */
function viaOptions(library: Library, endpoint: Endpoint, extra: object = {}): ImapConnectionDefinition {
  const { host, port } = endpoint; // not the whole server object: a key the kind does not take stops the bootstrap
  return { name: 'mail', kind: 'imap', client: library, host, port, auth: login, ...timing, ...extra } as ImapConnectionDefinition;
}

/**
 * The connection through a factory. imapflow's auto-IDLE waits 15 s by default, longer than these
 * heartbeats, so its factory shortens the wait to show IDLE between beats; node-imap IDLEs at once.
 */
function viaFactory(library: Library, endpoint: Endpoint, clientOptions: object = {}, extra: object = {}): ImapConnectionDefinition {
  const factory =
    library === 'imapflow'
      ? () => new ImapFlow({ ...endpoint, secure: false, auth: login, logger: false, autoIdleDelay: 100, ...clientOptions })
      : () => new Imap({ ...endpoint, user: login.user, password: login.pass, ...clientOptions });
  return { name: 'mail', kind: 'imap', client: library, factory, ...timing, ...extra } as ImapConnectionDefinition;
}

async function startApp(definition: ImapConnectionDefinition): Promise<TestApp> {
  const app = await TestApp.start({ health: { connections: [definition] } });
  await app.waitForState('mail', 'up', 10_000);
  return app;
}

/** Waits for the fault to be noticed and checks the bound; reports the figure in the test output. */
async function expectDetected(t: TestContext, app: TestApp, faultAt: number, fault: string, boundMs = BOUND_MS): Promise<string> {
  const { elapsedMs, snapshot } = await app.waitForState('mail', 'down', boundMs + MARGIN_MS + 5_000, faultAt);
  t.diagnostic(`${fault}: down after ${elapsedMs} ms (bound ${boundMs} ms): ${snapshot.reason}`);
  assert.ok(elapsedMs <= boundMs + MARGIN_MS, `${fault} noticed after ${elapsedMs} ms, bound ${boundMs} ms`);
  assert.equal((await app.health()).status, 503);
  return snapshot.reason;
}

async function expectRecovered(t: TestContext, app: TestApp, library: Library, clearedAt: number, fault: string): Promise<void> {
  const { elapsedMs } = await app.waitForState('mail', 'up', 15_000, clearedAt);
  t.diagnostic(`${fault}: up again ${elapsedMs} ms after the fault cleared`);
  assert.equal((await app.health()).status, 200);
  await assertClientWorks(app, library);
}

/** The live client reached through the handle answers a real command. */
async function assertClientWorks(app: TestApp, library: Library): Promise<void> {
  const handle = app.registry.get('mail');
  if (library === 'imapflow') {
    const client = handle.client<ImapFlow>();
    assert.ok(client?.usable, 'the handle gives a usable ImapFlow');
    const status = await client.status('INBOX', { messages: true });
    assert.equal(typeof (status && status.messages), 'number');
  } else {
    const client = handle.client<Imap>();
    assert.equal(client?.state, 'authenticated', 'the handle gives a logged-in node-imap client');
    const boxes = await new Promise<Imap.MailBoxes>((resolve, reject) => client.getBoxes((error, found) => (error ? reject(error) : resolve(found))));
    assert.ok('INBOX' in boxes);
  }
}

const isCommand = (name: string) => (line: string) => new RegExp(`^\\S+ ${name}(?: |$)`, 'i').test(line);

/** Polls `doveadm who` until the user has `count` sessions; returns the count seen last. */
async function sessionsSettleAt(server: DovecotServer, count: number, withinMs = 2_000): Promise<number> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const seen = (await server.who(DovecotServer.user)).length;
    if (seen === count || Date.now() > deadline) return seen;
    await sleep(25);
  }
}

for (const library of ['imapflow', 'node-imap'] as const) {
  describe(`IMAP through ${library} against real dovecot`, () => {
    let server: DovecotServer;
    before(async () => {
      server = await sharedDovecot();
      await sessionsSettleAt(server, 0);
    });
    after(async () => {
      if (!server.isRunning()) await server.startAgain();
    });

    it('sends a NOOP every intervalMs, leaving IDLE before it and entering it again after, and hands out the live client', async (t) => {
      const startedAt = Date.now();
      const app = await startApp(viaFactory(library, server));
      try {
        await sleep(4 * INTERVAL_MS + 300);
        await assertClientWorks(app, library);
        assert.equal((await app.health()).status, 200);
      } finally {
        await app.close();
      }
      const [session, ...others] = server.transcripts(startedAt);
      assert.ok(session, 'dovecot logged the session');
      assert.equal(others.length, 0, 'one session only');
      const commands = session.commands.map((c) => c.line);
      const noops = session.commands.filter((c) => isCommand('noop')(c.line));
      assert.ok(noops.length >= 4, `${noops.length} NOOPs in ${commands.join(' | ')}`);
      const gaps = noops.slice(1).map((noop, i) => Math.round(noop.at - noops[i]!.at));
      t.diagnostic(`${library}: NOOP gaps on the server ${gaps.join(', ')} ms (interval ${INTERVAL_MS} ms, jitter 10 %)`);
      for (const gap of gaps) assert.ok(gap >= INTERVAL_MS * 0.9 - 50 && gap <= INTERVAL_MS + TIMEOUT_MS, `NOOP gap ${gap} ms`);
      for (const noop of noops) {
        const tag = noop.line.split(' ')[0];
        assert.ok(session.responses.some((r) => r.line.startsWith(`${tag} OK`)), `tagged OK for ${noop.line}`);
      }
      // Every beat after the first finds the session in IDLE: DONE goes out just before the NOOP, and
      // IDLE starts again after it.
      for (const noop of noops.slice(1)) {
        const index = commands.indexOf(noop.line);
        assert.equal(commands[index - 1], 'DONE', `IDLE ended before ${noop.line}: ${commands.join(' | ')}`);
        assert.ok(commands.slice(index + 1).some(isCommand('IDLE')), `IDLE again after ${noop.line}`);
      }
    });

    it('kick (* BYE, then FIN): down at once, a new session and client after it', async (t) => {
      const app = await startApp(viaOptions(library, server));
      const changes: unknown[] = [];
      const subscription: Subscription = app.registry.get('mail').clientChanges$().subscribe((client) => changes.push(client));
      try {
        const first = app.registry.get('mail').client();
        assert.ok(first);
        const kickedAt = now();
        assert.equal(await server.kick(), 1);
        const reason = await expectDetected(t, app, kickedAt, 'kick');
        assert.match(reason, /BYE/);
        await expectRecovered(t, app, library, kickedAt, 'kick');
        const second = app.registry.get('mail').client();
        assert.ok(second && second !== first, 'a new client after the loss');
        assert.deepEqual(changes, [first, undefined, second]);
      } finally {
        subscription.unsubscribe();
        await app.close();
      }
    });

    it('kill -9 of the imap process (FIN): down at once, back up', async (t) => {
      const app = await startApp(viaOptions(library, server));
      try {
        const killedAt = now();
        assert.equal((await server.kill()).length, 1);
        await expectDetected(t, app, killedAt, 'kill -9 imap');
        await expectRecovered(t, app, library, killedAt, 'kill -9 imap');
      } finally {
        await app.close();
      }
    });

    it('a crash of the whole server: down at once, failed attempts while it is away, up after it restarts', async (t) => {
      const app = await startApp(viaOptions(library, server));
      try {
        const crashedAt = now();
        await server.killServer();
        await expectDetected(t, app, crashedAt, 'dovecot crash');
        await sleep(1_500);
        assert.ok(app.snapshot('mail').reconnectAttempts >= 1, 'reconnects were refused while the server was away');
        const restartedAt = now();
        await server.startAgain();
        await expectRecovered(t, app, library, restartedAt, 'dovecot crash');
      } finally {
        if (!server.isRunning()) await server.startAgain();
        await app.close();
      }
    });

    const proxyFaults: Array<{ fault: string; inject: (proxy: ChaosProxy) => void }> = [
      { fault: 'RST', inject: (proxy) => proxy.reset() },
      { fault: 'silent blackhole (proxy swallows every byte)', inject: (proxy) => proxy.blackhole() },
    ];
    for (const { fault, inject } of proxyFaults) {
      it(`${fault} through the chaos proxy: down within the bound, up once traffic passes again`, async (t) => {
        const proxy = await ChaosProxy.start(server.host, server.port);
        // Through the factory, so both libraries are in IDLE when the fault strikes.
        const app = await startApp(viaFactory(library, proxy));
        try {
          const faultAt = now();
          inject(proxy);
          await expectDetected(t, app, faultAt, fault);
          const healedAt = now();
          proxy.pass();
          await expectRecovered(t, app, library, healedAt, fault);
        } finally {
          await app.close();
          await proxy.close();
        }
      });
    }

    it('a socket timeout set on the client is reported as a loss at once, without crashing', async (t) => {
      // Heartbeats far apart, so only the client's own socket timeout can notice the silence.
      const slowBeats = { heartbeat: { intervalMs: 30_000, timeoutMs: 500, connectTimeoutMs: 1_000 } };
      const proxy = await ChaosProxy.start(server.host, server.port);
      const app = await startApp(viaFactory(library, proxy, { socketTimeout: 700 }, slowBeats));
      try {
        // The link dies once IDLE is established. Had it died between imapflow's IDLE and the server's
        // "+ idling", imapflow 2.1.2 would never report it: its first socket timeout queues a NOOP that
        // waits to send DONE, nothing is written, and Node's timeout does not fire again without
        // activity (measured). Only the heartbeat catches that case, as the blackhole tests show.
        await sleep(300);
        const faultAt = now();
        proxy.blackhole();
        const reason = await expectDetected(t, app, faultAt, `${library} socketTimeout 700 ms`, 2 * 700);
        assert.match(reason, /time/i);
        const healedAt = now();
        proxy.pass();
        const { elapsedMs } = await app.waitForState('mail', 'up', 15_000, healedAt);
        t.diagnostic(`socket timeout: up again ${elapsedMs} ms after the fault cleared`);
      } finally {
        await app.close();
        await proxy.close();
      }
    });

    it('app.close() sends LOGOUT and waits for its answer; no session, timer or socket is left', async () => {
      const baseline = activeHandles();
      const startedAt = Date.now();
      const app = await startApp(viaOptions(library, server));
      await app.close();
      const [session] = server.transcripts(startedAt);
      assert.ok(session?.commands.some((c) => isCommand('LOGOUT')(c.line)), 'LOGOUT reached the server');
      assert.ok(session.responses.some((r) => /^\S+ OK Logout completed/.test(r.line)), 'and was answered');
      assert.equal(await sessionsSettleAt(server, 0), 0, 'no session left on the server');
      await sleep(100);
      assert.deepEqual(leakedHandles(baseline), {}, 'no timer or socket left after app.close()');
    });

    it('SIGTERM of a real app process sends LOGOUT before the process ends', async () => {
      const startedAt = Date.now();
      const child = spawn(process.execPath, [fixture], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, IMAP_HOST: server.host, IMAP_PORT: String(server.port), IMAP_CLIENT: library },
      });
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      try {
        while (!output.includes('UP') && child.exitCode === null) await sleep(20);
        assert.ok(output.includes('UP'), output);
        child.kill('SIGTERM');
        const [code, signal] = await once(child, 'exit');
        assert.ok(code === 0 || signal === 'SIGTERM', `exit ${code} ${signal}: ${output}`);
      } finally {
        clearTimeout(timer);
      }
      const [session] = server.transcripts(startedAt);
      assert.ok(session?.commands.some((c) => isCommand('LOGOUT')(c.line)), 'LOGOUT reached the server');
      assert.ok(session.responses.some((r) => /^\S+ OK Logout completed/.test(r.line)), 'and was answered');
    });

    it('20 forced reconnects in a row leave exactly one session on the server', async (t) => {
      const startedAt = Date.now();
      const app = await startApp(viaOptions(library, server));
      const counts: number[] = [];
      try {
        for (let i = 0; i < 20; i++) {
          const at = now();
          app.registry.get('mail').forceReconnect(`test ${i}`);
          await app.waitFor('mail', (s) => s.state === 'up' && s.since >= at, 5_000);
          counts.push(await sessionsSettleAt(server, 1));
        }
        t.diagnostic(`sessions on the server after each reconnect: ${counts.join(',')}`);
        assert.deepEqual(counts, Array(20).fill(1));
        await assertClientWorks(app, library);
      } finally {
        await app.close();
      }
      const sessions: SessionTranscript[] = server.transcripts(startedAt);
      assert.equal(sessions.length, 21);
      const loggedOut = sessions.filter((s) => s.commands.some((c) => isCommand('LOGOUT')(c.line)));
      assert.equal(loggedOut.length, 21, 'every replaced session was logged out politely, and the last at close');
    });

    it('maxSessionMs: logs in again after the lifetime (less jitter), logging the old session out', async (t) => {
      const startedAt = Date.now();
      const app = await startApp(viaOptions(library, server, { maxSessionMs: 1_500 }));
      try {
        const recycled = await app.waitFor('mail', (s) => s.state === 'down', 5_000);
        assert.match(recycled.reason, /maximum lifetime/);
        const { elapsedMs } = await app.waitForState('mail', 'up', 5_000, recycled.since);
        t.diagnostic(`recycled after ${Math.round(recycled.since - startedAt)} ms; up again ${elapsedMs} ms later`);
        assert.equal(await sessionsSettleAt(server, 1), 1);
      } finally {
        await app.close();
      }
      const [first] = server.transcripts(startedAt);
      assert.ok(first?.commands.some((c) => isCommand('LOGOUT')(c.line)), 'the recycled session was logged out');
    });

    it("a refused login reads as the server said it, never imapflow's bare \"Command failed\"", async () => {
      const app = await TestApp.start({ health: { connections: [viaOptions(library, server, { auth: { user: login.user, pass: 'not-the-password' }, heartbeat: { ...timing.heartbeat, connectTimeoutMs: 5_000 } })] } });
      try {
        const { lastError, reason } = await app.waitFor('mail', (s) => s.lastError !== undefined, 5_000);
        const expected =
          library === 'imapflow' ? 'the server refused authentication (NO [AUTHENTICATIONFAILED]): Authentication failed.' : 'Authentication failed.';
        assert.equal(lastError, expected);
        assert.ok(reason.endsWith(expected), reason);
      } finally {
        await app.close();
      }
    });

    it("maxSessionMs counts the session's age on the monitor's clock, not the wall clock", async () => {
      // Hours pass on a FakeClock in no real time: only a session age read from that clock reaches the lifetime.
      const startedAt = Date.now();
      const clock = new FakeClock(startedAt);
      const hour = 3_600_000;
      const definition = viaOptions(library, server, {
        heartbeat: { intervalMs: hour, timeoutMs: 60_000, connectTimeoutMs: 60_000, jitter: 0 },
        maxSessionMs: 1.5 * hour, // less up to 10 % jitter: between 1.35 h and 1.5 h
      });
      const options = resolveMonitorOptions('mail', definition);
      const monitor = new ConnectionMonitor('mail', createAdapter(definition, options, { clock, report: reportToConsole }), options, { clock });
      const reached = async (what: string, predicate: (s: ConnectionSnapshot) => boolean) => {
        const deadline = Date.now() + 5_000;
        while (!predicate(monitor.snapshot())) {
          assert.ok(Date.now() < deadline, `${what}: ${JSON.stringify(monitor.snapshot())}`);
          await sleep(10);
        }
        return monitor.snapshot();
      };
      try {
        monitor.start();
        await reached('connected', (s) => s.state === 'up');
        await clock.advance(hour); // the first beat: 1 h old, a NOOP
        await reached('first beat answered', (s) => s.lastBeatAt === clock.now() && s.state === 'up');
        await clock.advance(hour); // the second beat: 2 h old, past the lifetime
        const recycled = await reached('recycled at the second beat', (s) => s.state !== 'up');
        assert.match(recycled.reason, /maximum lifetime/);
        await clock.advance(options.reconnect.maxDelayMs);
        await reached('logged in again', (s) => s.state === 'up');
      } finally {
        await monitor.close(5_000);
      }
      const sessions = server.transcripts(startedAt);
      assert.equal(sessions.length, 2, 'the recycled session and the new one');
      assert.ok(sessions.every((s) => s.commands.some((c) => isCommand('LOGOUT')(c.line))), 'both were logged out');
    });
  });
}

describe('IMAP against dovecot in a network namespace (kernel-level faults)', async () => {
  const reason = await NetworkNamespace.unsupportedReason();
  let namespace: NetworkNamespace;
  let server: DovecotServer;
  before(async () => {
    if (reason) return;
    namespace = await NetworkNamespace.create();
    server = await DovecotServer.start({ netns: namespace });
  });
  after(async () => {
    await server?.stop();
    await namespace?.destroy();
  });

  for (const library of ['imapflow', 'node-imap'] as const) {
    // Skipped only where the kernel or the user forbids namespaces; CI runs as root and runs it.
    it(`${library} in IDLE: iptables DROP both ways (no FIN, no RST): down within the bound, up after the rules go`, { skip: reason }, async (t) => {
      const app = await startApp(viaFactory(library, server));
      try {
        await sleep(300); // IDLE established (the chaos-proxy blackhole strikes while IDLE is still being sent)
        const faultAt = now();
        await namespace.blackhole(server.port);
        await expectDetected(t, app, faultAt, `${library} iptables DROP`);
        await sleep(1_500); // reconnects run into the silence too
        const healedAt = now();
        await namespace.heal();
        await expectRecovered(t, app, library, healedAt, `${library} iptables DROP`);
      } finally {
        await app.close();
      }
    });
  }
});
