/**
 * No function of the app's can crash the process, hold a monitor past its deadlines or stop another
 * connection: every callback the package calls, in a throwing, a rejecting and a never-settling variant,
 * in real apps (one per group) on real servers where the callback belongs to a real kind.
 *
 * For each row: nothing reached `uncaughtException` or `unhandledRejection` (either would end a real
 * process), the failure is logged with the connection and the place, the connection goes on (up again,
 * beating), and a neighbour connection in the same app kept beating throughout.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, type LoggerService, type Type } from '@nestjs/common';
import type { Client } from '@stomp/stompjs';
import { ImapFlow } from 'imapflow';
import { filter, map } from 'rxjs';
import {
  ConnectionHandle,
  ConnectionHeartbeat,
  getConnectionToken,
  keepStompSubscription,
  MonitorConnection,
  OnConnected,
  OnConnectionFailed,
  OnConnectionLost,
  OnConnectionRecovered,
} from '../lib/index.js';
import type { ConnectionDefinition, ConnectionSnapshot, ImapFlowConnectionDefinition, StompSubscriptionDefinition } from '../lib/index.js';
import type { ActiveMqServer } from './kit/activemq.server.js';
import { DovecotServer } from './kit/dovecot.server.js';
import { sharedActiveMq, sharedDovecot } from './kit/shared-servers.js';
import { stompPublish } from './kit/stomp.util.js';
import { TestApp } from './kit/test-app.js';

type Variant = 'throws' | 'rejects' | 'never-settles';
const VARIANTS: readonly Variant[] = ['throws', 'rejects', 'never-settles'];

const BEAT = { intervalMs: 500, timeoutMs: 300, connectTimeoutMs: 1_000 };
const timing = {
  heartbeat: BEAT,
  reconnect: { initialDelayMs: 100, maxDelayMs: 500, maxAttempts: Infinity },
};
const SHUTDOWN_TIMEOUT_MS = 1_000;
/** Generous: two cores, other suites running beside. */
const WITHIN_MS = 15_000;
const unique = () => randomBytes(4).toString('hex');
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---------------------------------------------------------------------------------------------------------
// What reaches the process: in a real app either of these would end it (Node's defaults), so a row fails.
const escaped: string[] = [];
const onEscape = (error: unknown) => void escaped.push(error instanceof Error ? (error.stack ?? error.message) : String(error));
process.on('uncaughtException', onEscape);
process.on('unhandledRejection', onEscape);

/** Every line the apps log, at every level. */
class LogCapture implements LoggerService {
  readonly lines: string[] = [];

  log(message: unknown): void {
    this.add('LOG', message);
  }
  error(message: unknown): void {
    this.add('ERROR', message);
  }
  warn(message: unknown): void {
    this.add('WARN', message);
  }
  debug(message: unknown): void {
    this.add('DEBUG', message);
  }
  verbose(message: unknown): void {
    this.add('VERBOSE', message);
  }
  fatal(message: unknown): void {
    this.add('FATAL', message);
  }

  async waitFor(pattern: RegExp, withinMs = WITHIN_MS): Promise<string> {
    const deadline = Date.now() + withinMs;
    for (;;) {
      const line = this.lines.find((candidate) => pattern.test(candidate));
      if (line) return line;
      if (Date.now() > deadline) assert.fail(`no log line matches ${pattern} within ${withinMs} ms; got:\n${this.lines.slice(-40).join('\n')}`);
      await sleep(20);
    }
  }

  private add(level: string, message: unknown): void {
    const line = `${level} ${String(message)}`;
    this.lines.push(line);
    if (process.env.CH_TEST_LOGS) console.log(line);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Misbehaving callbacks.

/** What a misbehaving callback does; the error names it. */
function misbehave(variant: Variant, label: string): unknown {
  if (variant === 'throws') throw new Error(`${label} threw on purpose`);
  if (variant === 'rejects') return Promise.reject(new Error(`${label} rejected on purpose`));
  return new Promise(() => undefined);
}

/** A callback that misbehaves on the calls `bad` picks (1-based) and does `good` otherwise; counts its calls. */
interface Scripted {
  /** Typed as the package's callbacks are, which a misbehaving one honours only by its type. */
  (...args: unknown[]): Promise<void>;
  calls: number;
  /** What its errors call it: "<label> threw on purpose". */
  readonly label: string;
}
function scripted(variant: Variant, label: string, bad: (call: number) => boolean, good: () => unknown = () => Promise.resolve()): Scripted {
  const fn = (() => {
    fn.calls += 1;
    return bad(fn.calls) ? misbehave(variant, label) : good();
  }) as unknown as Scripted;
  fn.calls = 0;
  Object.defineProperty(fn, 'label', { value: label });
  return fn;
}

/** The error text a failed operation shows in a transition reason: the callback's own, or the deadline's. */
function why(variant: Variant, label: string, deadline: string): string {
  return variant === 'throws' ? `${label} threw on purpose` : variant === 'rejects' ? `${label} rejected on purpose` : deadline;
}

/** The log line of a callback the package caught: `place` names it, `next` says what happens now. */
function caught(connection: string, place: string, variant: Variant, label: string, next = 'the monitor goes on.'): RegExp {
  const how = variant === 'throws' ? 'threw' : 'rejected';
  return new RegExp(`^ERROR ${escape(`Connection "${connection}": ${place} ${how} (${label} ${how} on purpose); ${next}`)}$`);
}

const PASCAL: Record<Variant, string> = { throws: 'Throwing', rejects: 'Rejecting', 'never-settles': 'NeverSettling' };

function named<T extends Type>(cls: T, name: string): T {
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
}

// ---------------------------------------------------------------------------------------------------------
// The table.

interface Row {
  /** The callback, as the README names it. */
  readonly callback: string;
  readonly variant: Variant;
  /** The connection it belongs to. */
  readonly connection: string;
  /** The callback: its calls so far (each row's must have been called, or the row proves nothing) and its label. */
  readonly fn: { readonly calls: number; readonly label: string };
  /**
   * The log line naming the connection and the place. None where nothing failed that the package can
   * know of: a handler or subscriber that never settles is not awaited, so it simply holds nothing up.
   */
  readonly logged?: RegExp;
  /** Resolves once the connection shows that its monitor went on. */
  readonly wentOn: (app: TestApp) => Promise<unknown>;
  /** 'shutdown': the callback runs at app.close(), and the row is checked after it. */
  readonly phase?: 'shutdown';
}

/** Up again after the misbehaviour (a reconnect), and a heartbeat answered since. */
const upAgain = (name: string) => (app: TestApp) =>
  app.waitFor(name, (s) => s.state === 'up' && s.reason.startsWith('reconnected') && (s.lastBeatAt ?? 0) > s.since, WITHIN_MS);

/** A heartbeat answered from now on, and the connection serving. */
const keepsBeating = (name: string) => async (app: TestApp): Promise<ConnectionSnapshot> => {
  const since = Date.now();
  return app.waitFor(name, (s) => s.state === 'up' && (s.lastBeatAt ?? 0) > since, WITHIN_MS);
};

/** Closed, whatever close() did. */
const closed = (name: string) => async (app: TestApp) => assert.equal(app.snapshot(name).state, 'closed');

async function checkRow(app: TestApp, logs: LogCapture, row: Row): Promise<void> {
  await until(() => row.fn.calls > 0, `${row.callback} was never called`);
  if (row.logged) await logs.waitFor(row.logged);
  await row.wentOn(app);
  if (row.phase !== 'shutdown') await keepsBeating('neighbour')(app);
  const how = row.variant === 'throws' ? 'threw' : 'rejected'; // a callback that never settles has nothing to escape
  const mine = escaped.filter((stack) => row.variant !== 'never-settles' && stack.startsWith(`Error: ${row.fn.label} ${how} on purpose`));
  assert.deepEqual(mine, [], `the ${row.callback} reached uncaughtException or unhandledRejection: in a real app, the process would have died`);
}

async function until(condition: () => boolean, failure: string, withinMs = WITHIN_MS): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`${failure} within ${withinMs} ms`);
    await sleep(20);
  }
}

/** After a group: nothing at all reached the process since `from`. */
function nothingEscapedSince(from: number): void {
  assert.deepEqual(escaped.slice(from), [], 'nothing reached uncaughtException or unhandledRejection');
}

const neighbour: ConnectionDefinition = { name: 'neighbour', kind: 'custom', ping: () => Promise.resolve(), ...timing };

// ---------------------------------------------------------------------------------------------------------

describe('custom connections: ping, open, close, @ConnectionHeartbeat, onFailure, lifecycle handlers, events$ subscribers', () => {
  const logs = new LogCapture();
  const rows: Row[] = [];
  const connections: ConnectionDefinition[] = [neighbour, { name: 'watched', kind: 'custom', ping: () => Promise.resolve(), ...timing }];
  const providers: Type[] = [];
  /** Subscribes the events$ rows' subscribers once the app runs. */
  const subscribers: Array<() => void> = [];
  let app: TestApp;
  let closedApp = false;

  for (const variant of VARIANTS) {
    // ping: the first heartbeat misbehaves; a failed beat, a reconnect, up again.
    const ping = scripted(variant, 'ping', (call) => call === 1);
    const pingName = `ping-${variant}`;
    connections.push({ name: pingName, kind: 'custom', open: () => Promise.resolve(), ping, ...timing });
    rows.push({
      callback: 'ping',
      variant,
      connection: pingName,
      fn: ping,
      logged: new RegExp(`${pingName}: up -> down \\(heartbeat failed 1 time\\(s\\) in a row: ${escape(why(variant, 'ping', `Connection "${pingName}": no heartbeat answer within ${BEAT.timeoutMs} ms.`))}\\)`),
      wentOn: upAgain(pingName),
    });

    // open: the first connect misbehaves.
    const open = scripted(variant, 'open', (call) => call === 1);
    const openName = `open-${variant}`;
    connections.push({ name: openName, kind: 'custom', open, ping: () => Promise.resolve(), ...timing });
    rows.push({
      callback: 'open',
      variant,
      connection: openName,
      fn: open,
      logged: new RegExp(`${openName}: connecting -> down \\(connect failed: ${escape(why(variant, 'open', `Connection "${openName}": connect did not finish within ${BEAT.connectTimeoutMs} ms.`))}\\)`),
      wentOn: upAgain(openName),
    });

    // close: misbehaves at shutdown; the connection is closed by force within the shutdown deadline.
    const close = scripted(variant, 'close', () => true);
    const closeName = `close-${variant}`;
    connections.push({ name: closeName, kind: 'custom', ping: () => Promise.resolve(), close, ...timing });
    rows.push({
      callback: 'close',
      variant,
      connection: closeName,
      fn: close,
      logged: new RegExp(
        `${closeName}: closing -> closed \\(${escape(`Connection "${closeName}" was closed on purpose, by force: ${why(variant, 'close', `Connection "${closeName}": close did not finish within ${SHUTDOWN_TIMEOUT_MS} ms.`)}`)}\\)`,
      ),
      wentOn: closed(closeName),
      phase: 'shutdown',
    });

    // @ConnectionHeartbeat: a method is the ping; its first call connects, its second (the first beat) misbehaves.
    const beat = scripted(variant, '@ConnectionHeartbeat', (call) => call === 2);
    const beatName = `heartbeat-${variant}`;
    @Injectable()
    class Heartbeat {
      @ConnectionHeartbeat(beatName, timing)
      ping(signal: AbortSignal): unknown {
        return beat(signal);
      }
    }
    providers.push(named(Heartbeat, `${PASCAL[variant]}Heartbeat`));
    rows.push({
      callback: '@ConnectionHeartbeat method',
      variant,
      connection: beatName,
      fn: beat,
      logged: new RegExp(
        `${beatName}: up -> down \\(heartbeat failed 1 time\\(s\\) in a row: ${escape(why(variant, '@ConnectionHeartbeat', `Connection "${beatName}": no heartbeat answer within ${BEAT.timeoutMs} ms.`))}\\)`,
      ),
      wentOn: upAgain(beatName),
    });

    // onFailure and the four lifecycle handlers, on a connection scripted through its whole life:
    // connect (connected), a failed beat (lost), a failed reconnect with maxAttempts 1 (failed), a
    // successful retry (recovered), then beats.
    const handlersName = `handlers-${variant}`;
    const onFailure = scripted(variant, 'onFailure', () => true);
    let opens = 0;
    let pings = 0;
    connections.push({
      name: handlersName,
      kind: 'custom',
      open: async () => {
        if (++opens === 2) throw new Error('scripted: the server is away');
      },
      ping: async () => {
        if (++pings === 1) throw new Error('scripted: no answer');
      },
      ...timing,
      reconnect: { ...timing.reconnect, maxAttempts: 1 },
      failure: { policy: 'retry', onFailure },
    });
    rows.push({
      callback: 'failure.onFailure',
      variant,
      connection: handlersName,
      fn: onFailure,
      logged: variant === 'never-settles' ? undefined : caught(handlersName, 'the onFailure handler', variant, 'onFailure'),
      wentOn: upAgain(handlersName),
    });
    const handlers = {
      connected: scripted(variant, '@OnConnected', () => true),
      lost: scripted(variant, '@OnConnectionLost', () => true),
      failed: scripted(variant, '@OnConnectionFailed', () => true),
      recovered: scripted(variant, '@OnConnectionRecovered', () => true),
    };
    @Injectable()
    class Handlers {
      @OnConnected(handlersName)
      connected(): unknown {
        return handlers.connected();
      }
      @OnConnectionLost(handlersName)
      lost(): unknown {
        return handlers.lost();
      }
      @OnConnectionFailed(handlersName)
      failed(): unknown {
        return handlers.failed();
      }
      @OnConnectionRecovered(handlersName)
      recovered(): unknown {
        return handlers.recovered();
      }
    }
    const className = `${PASCAL[variant]}Handlers`;
    providers.push(named(Handlers, className));
    for (const [method, decorator] of [
      ['connected', '@OnConnected'],
      ['lost', '@OnConnectionLost'],
      ['failed', '@OnConnectionFailed'],
      ['recovered', '@OnConnectionRecovered'],
    ] as const) {
      rows.push({
        callback: `${decorator} handler`,
        variant,
        connection: handlersName,
        fn: handlers[method],
        logged: variant === 'never-settles' ? undefined : caught(handlersName, `the ${decorator} handler ${className}.${method}`, variant, decorator),
        wentOn: upAgain(handlersName),
      });
    }

    // events$ subscribers, on a healthy connection: called on every event, so they misbehave again and again.
    const subscriber = scripted(variant, 'events$ subscriber', () => true);
    const piped = scripted(variant, 'piped events$ subscriber', () => true);
    rows.push(
      {
        callback: 'events$ subscriber',
        variant,
        connection: 'watched',
        fn: subscriber,
        logged: variant === 'never-settles' ? undefined : caught('watched', 'a subscriber of events$', variant, 'events$ subscriber'),
        wentOn: keepsBeating('watched'),
      },
      {
        callback: 'events$.pipe(filter, map) subscriber',
        variant,
        connection: 'watched',
        fn: piped,
        logged: variant === 'never-settles' ? undefined : caught('watched', 'a subscriber of events$', variant, 'piped events$ subscriber'),
        wentOn: keepsBeating('watched'),
      },
    );
    subscribers.push(() => {
      const handle = app.registry.get('watched');
      handle.events$.subscribe(subscriber);
      handle.events$
        .pipe(
          filter((event) => event.type === 'heartbeat'),
          map((event) => event.at),
        )
        .subscribe({ next: piped });
    });
  }

  let escapedBefore = 0;

  before(async () => {
    escapedBefore = escaped.length;
    app = await TestApp.start({ logger: logs, providers, health: { connections, shutdown: { timeoutMs: SHUTDOWN_TIMEOUT_MS } } });
    for (const subscribe of subscribers) subscribe();
  });
  after(async () => {
    if (app && !closedApp) await app.close();
  });

  it('registry.get(name) gives the same handle as @InjectConnection, and its streams stay guarded through pipe()', () => {
    const handle = app.registry.get('watched');
    assert.ok(handle instanceof ConnectionHandle);
    assert.equal(handle, app.app.get(getConnectionToken('watched')));
    assert.equal(handle.events$.pipe(filter(() => true)).constructor, handle.events$.constructor);
  });

  for (const row of rows.filter((r) => r.phase !== 'shutdown')) {
    it(`${row.callback} that ${row.variant}: no crash, logged, the monitor goes on, the neighbour keeps beating`, () => checkRow(app, logs, row));
  }

  it('closes within the shutdown deadline, whatever close() does', async (t) => {
    const startedAt = Date.now();
    closedApp = true;
    await app.close();
    const tookMs = Date.now() - startedAt;
    t.diagnostic(`app.close() took ${tookMs} ms (shutdown.timeoutMs ${SHUTDOWN_TIMEOUT_MS})`);
    assert.ok(tookMs < SHUTDOWN_TIMEOUT_MS + 2_000, `app.close() took ${tookMs} ms; deadline ${SHUTDOWN_TIMEOUT_MS} ms`);
  });

  for (const row of rows.filter((r) => r.phase === 'shutdown')) {
    it(`${row.callback} that ${row.variant}: no crash, logged, closed anyway`, () => checkRow(app, logs, row));
  }

  it('let nothing at all reach uncaughtException or unhandledRejection', () => nothingEscapedSince(escapedBefore));
});

describe('STOMP on ActiveMQ: subscriptions[].onMessage, keepStompSubscription, clientChanges$() subscribers, a @MonitorConnection property', () => {
  const logs = new LogCapture();
  const rows: Row[] = [];
  const stompTiming = { heartbeat: { intervalMs: 1_000, timeoutMs: 500, connectTimeoutMs: 2_000 }, reconnect: timing.reconnect };
  const subscriptions: StompSubscriptionDefinition[] = [];
  /** What runs once the app is up: run-time subscriptions, subscribers, and a message to every queue. */
  const actions: Array<(app: TestApp, broker: ActiveMqServer) => Promise<unknown> | void> = [];
  const NACKED = "the message is NACKed in 1000 ms, so the broker's redelivery and dead-letter rules apply.";
  let app: TestApp | undefined;

  for (const variant of VARIANTS) {
    const never = variant === 'never-settles';
    const queue = `/queue/ch-callbacks-${variant}-${unique()}`;
    const onMessage = scripted(variant, 'onMessage', () => true);
    subscriptions.push({ destination: queue, headers: { ack: 'client-individual' }, onMessage });
    actions.push((_app, broker) => stompPublish(broker.host, broker.port, queue, `to the ${variant} handler`));
    rows.push({
      callback: 'subscriptions[].onMessage',
      variant,
      connection: 'broker',
      fn: onMessage,
      logged: never ? undefined : caught('broker', `the onMessage handler of ${queue}`, variant, 'onMessage', NACKED),
      wentOn: keepsBeating('broker'),
    });

    const kept = `/queue/ch-callbacks-kept-${variant}-${unique()}`;
    const keptHandler = scripted(variant, 'kept onMessage', () => true);
    actions.push(async (started, broker) => {
      keepStompSubscription(started.registry.get('broker'), kept, keptHandler, { ack: 'client-individual' });
      await stompPublish(broker.host, broker.port, kept, `to the kept ${variant} handler`);
    });
    rows.push({
      callback: 'keepStompSubscription onMessage',
      variant,
      connection: 'broker',
      fn: keptHandler,
      logged: never ? undefined : caught('broker', `the onMessage handler of ${kept} (keepStompSubscription)`, variant, 'kept onMessage', NACKED),
      wentOn: keepsBeating('broker'),
    });

    const changes = scripted(variant, 'clientChanges$ subscriber', () => true);
    actions.push((started) => void started.registry.get('broker').clientChanges$<Client>().pipe(filter(Boolean)).subscribe(changes));
    rows.push({
      callback: 'clientChanges$().pipe(filter) subscriber',
      variant,
      connection: 'broker',
      fn: changes,
      logged: never ? undefined : caught('broker', 'a subscriber of clientChanges$()', variant, 'clientChanges$ subscriber'),
      wentOn: keepsBeating('broker'),
    });
  }

  // A setter has no result to reject or leave pending: throwing is its only way to fail.
  const setter = { calls: 0, label: 'the client setter' };
  rows.push({
    callback: '@MonitorConnection property (its setter)',
    variant: 'throws',
    connection: 'broker-property',
    fn: setter,
    logged: caught('broker-property', 'setting the property of @MonitorConnection on ClientHolder.client', 'throws', 'the client setter'),
    wentOn: keepsBeating('broker-property'),
  });

  let escapedBefore = 0;

  before(async () => {
    escapedBefore = escaped.length;
    const broker = await sharedActiveMq();
    @Injectable()
    class ClientHolder {
      @MonitorConnection({ name: 'broker-property', kind: 'stomp', host: broker.host, port: broker.port, ...stompTiming })
      set client(_client: Client | undefined) {
        setter.calls += 1;
        throw new Error('the client setter threw on purpose');
      }
      get client(): Client | undefined {
        return undefined;
      }
    }
    const connections: ConnectionDefinition[] = [
      neighbour,
      { name: 'broker', kind: 'stomp', host: broker.host, port: broker.port, subscriptions, ...stompTiming },
    ];
    app = await TestApp.start({ logger: logs, providers: [ClientHolder], health: { connections, shutdown: { timeoutMs: SHUTDOWN_TIMEOUT_MS } } });
    await app.waitFor('broker', (s) => s.state === 'up', WITHIN_MS);
    for (const act of actions) await act(app, broker);
  });
  after(async () => {
    await app?.close();
  });

  for (const row of rows) {
    it(`${row.callback} that ${row.variant}: no crash, logged, the monitor goes on, the neighbour keeps beating`, () => checkRow(app as TestApp, logs, row));
  }

  it('let nothing at all reach uncaughtException or unhandledRejection', () => nothingEscapedSince(escapedBefore));
});

describe('IMAP on dovecot: factory, @MonitorConnection factory method', () => {
  const logs = new LogCapture();
  const rows: Row[] = [];
  const CONNECT_TIMEOUT_MS = 1_500;
  const imapTiming = { heartbeat: { intervalMs: 1_000, timeoutMs: 500, connectTimeoutMs: CONNECT_TIMEOUT_MS }, reconnect: timing.reconnect };
  const connections: ConnectionDefinition[] = [neighbour];
  const providers: Type[] = [];
  let dovecot: DovecotServer | undefined;
  let app: TestApp | undefined;
  /** A real, unconnected client, as a factory must return. */
  const newClient = () =>
    new ImapFlow({ host: dovecot?.host ?? '', port: dovecot?.port, secure: false, auth: { user: DovecotServer.user, pass: DovecotServer.password }, logger: false });

  for (const variant of VARIANTS) {
    // The first call misbehaves: a failed connect; the next builds a real client, and the session is up.
    const factory = scripted(variant, 'factory', (call) => call === 1, newClient);
    const factoryName = `imap-factory-${variant}`;
    connections.push({ name: factoryName, kind: 'imap', client: 'imapflow', factory, ...imapTiming } as unknown as ImapFlowConnectionDefinition);
    const method = scripted(variant, 'factory method', (call) => call === 1, newClient);
    const methodName = `imap-method-${variant}`;
    @Injectable()
    class Mailbox {
      @MonitorConnection({ name: methodName, kind: 'imap', client: 'imapflow', ...imapTiming })
      createClient(): unknown {
        return method();
      }
    }
    providers.push(named(Mailbox, `${PASCAL[variant]}Mailbox`));
    for (const [callback, name, fn, label] of [
      ['IMAP factory', factoryName, factory, 'factory'],
      ['@MonitorConnection factory method', methodName, method, 'factory method'],
    ] as const) {
      rows.push({
        callback,
        variant,
        connection: name,
        fn: fn,
        logged: new RegExp(`${name}: connecting -> down \\(connect failed: ${escape(why(variant, label, `Connection "${name}": connect did not finish within ${CONNECT_TIMEOUT_MS} ms.`))}\\)`),
        wentOn: upAgain(name),
      });
    }
  }

  let escapedBefore = 0;

  before(async () => {
    escapedBefore = escaped.length;
    dovecot = await sharedDovecot();
    app = await TestApp.start({ logger: logs, providers, health: { connections, shutdown: { timeoutMs: SHUTDOWN_TIMEOUT_MS } } });
  });
  after(async () => {
    await app?.close();
  });

  for (const row of rows) {
    it(`${row.callback} that ${row.variant}: no crash, logged, the monitor goes on, the neighbour keeps beating`, () => checkRow(app as TestApp, logs, row));
  }

  it('let nothing at all reach uncaughtException or unhandledRejection', () => nothingEscapedSince(escapedBefore));
});
