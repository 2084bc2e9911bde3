import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BeatReport, ConnectionAdapter } from './connection-adapter.interface.js';
import type { ConnectionEvent, StateChangeEvent } from './connection-event.js';
import { ConnectionMonitor } from './connection-monitor.js';
import { FakeClock, settle } from '../testing/fake-clock.js';
import type { MonitorOptionsInput } from './monitor-options.js';
import { resolveMonitorOptions } from './resolve-monitor-options.js';

type Behaviour = 'ok' | 'fail' | 'hang';

/** The fake clock of the test being set up, for pings that take time. */
const clockOf: { current?: FakeClock } = {};

/** The adapter seen by the monitor, steered through `script`. */
function makeAdapter() {
  const script = {
    open: 'ok' as Behaviour,
    ping: 'ok' as Behaviour,
    calls: { open: 0, ping: 0, close: 0 },
    aborted: 0,
    hungPing: undefined as (() => void) | undefined,
    /** The next this many pings fail, whatever `ping` says. */
    failNext: 0,
    /** Pings answer after this long on the fake clock (0: at once). */
    pingDelayMs: 0,
    lossListener: undefined as ((error: Error) => void) | undefined,
    /** What an answered ping reports beyond the answer. */
    report: undefined as BeatReport | undefined,
  };
  const act = (behaviour: Behaviour, signal: AbortSignal, keep?: (resolve: () => void) => void): Promise<void | BeatReport> => {
    signal.addEventListener('abort', () => (script.aborted += 1));
    if (behaviour === 'ok') return Promise.resolve(script.report);
    if (behaviour === 'fail') return Promise.reject(new Error('ECONNREFUSED postgres://app:hunter2@db:5432'));
    return new Promise<void>((resolve) => keep?.(resolve));
  };
  const adapter: ConnectionAdapter = {
    kind: 'scripted',
    target: 'db:5432',
    open: async (signal) => void (script.calls.open++, await act(script.open, signal)),
    ping: (signal) => {
      script.calls.ping++;
      if (script.failNext > 0) return (script.failNext--, act('fail', signal));
      if (script.ping === 'ok' && script.pingDelayMs > 0) return new Promise<void>((resolve) => void clockOf.current?.setTimer(resolve, script.pingDelayMs));
      return act(script.ping, signal, (resolve) => (script.hungPing = resolve));
    },
    close: async () => void script.calls.close++,
    observeLoss: (listener) => {
      script.lossListener = listener;
      return () => (script.lossListener = undefined);
    },
  };
  return { adapter, script };
}

function setup(options: MonitorOptionsInput = {}, random = () => 0) {
  const clock = new FakeClock();
  clockOf.current = clock;
  const { adapter, script } = makeAdapter();
  const resolved = resolveMonitorOptions('db', {
    heartbeat: { intervalMs: 10_000, timeoutMs: 2_000, connectTimeoutMs: 3_000, jitter: 0, ...options.heartbeat },
    reconnect: { initialDelayMs: 1_000, maxDelayMs: 8_000, jitter: 0, maxAttempts: 3, ...options.reconnect },
    suspicion: { enabled: false, ...options.suspicion },
    failure: options.failure,
  });
  const monitor = new ConnectionMonitor('db', adapter, resolved, { clock, random });
  const events: ConnectionEvent[] = [];
  monitor.events$.subscribe((event) => events.push(event));
  const transitions = () =>
    events.filter((e): e is StateChangeEvent => e.type === 'state').map((e) => `${e.from}->${e.to}`);
  return { clock, monitor, script, events, transitions };
}

describe('ConnectionMonitor', () => {
  it('connects, then beats every intervalMs and records the round trip', async () => {
    const { clock, monitor, script, transitions } = setup();
    monitor.start();
    await settle();
    assert.equal(monitor.state, 'up');
    await clock.advance(10_000);
    await clock.advance(10_000);
    assert.equal(script.calls.ping, 2);
    assert.equal(monitor.snapshot().lastBeatAt, clock.now());
    assert.equal(monitor.snapshot().lastRttMs, 0);
    assert.deepEqual(transitions(), ['idle->connecting', 'connecting->up']);
    await monitor.close(1_000);
  });

  it('declares a silent death within intervalMs + timeoutMs and reconnects after the backoff', async () => {
    const { clock, monitor, script, transitions } = setup();
    monitor.start();
    await settle();
    script.ping = 'hang';
    await clock.advance(10_000 + 2_000 - 1);
    assert.equal(monitor.state, 'up', 'still within the deadline');
    await clock.advance(1);
    assert.equal(monitor.state, 'down');
    assert.match(monitor.snapshot().reason, /no heartbeat answer within 2000 ms/);
    assert.ok(script.aborted >= 1, 'the hung ping was told to give up');
    script.ping = 'ok';
    await clock.advance(1_000);
    assert.equal(monitor.state, 'up');
    assert.deepEqual(transitions(), ['idle->connecting', 'connecting->up', 'up->down', 'down->reconnecting', 'reconnecting->up']);
    await monitor.close(1_000);
  });

  it('ignores the late answer of a hung ping once it has been declared dead', async () => {
    const { clock, monitor, script } = setup();
    monitor.start();
    await settle();
    script.ping = 'hang';
    script.open = 'hang';
    await clock.advance(12_000);
    assert.equal(monitor.state, 'down');
    script.hungPing?.();
    await settle();
    assert.equal(monitor.state, 'down', 'a stale success does not bring it back');
    await monitor.close(1_000);
  });

  it('goes degraded below the failure threshold, confirms at once, and is up again when the confirmation answers', async () => {
    const { clock, monitor, script, transitions, events } = setup({ heartbeat: { failureThreshold: 2 } });
    monitor.start();
    await settle();
    script.failNext = 1;
    await clock.advance(10_000);
    assert.equal(monitor.state, 'up');
    assert.equal(script.calls.ping, 2, 'the confirmation went out at once');
    const beats = events.filter((e) => e.type === 'heartbeat').map((e) => `${e.ok}@${e.at - events[0]!.at}`);
    assert.deepEqual(beats, ['false@10000', 'true@10000']);
    assert.deepEqual(transitions(), ['idle->connecting', 'connecting->up', 'up->degraded', 'degraded->up']);
    await monitor.close(1_000);
  });

  it('reads an answered but impaired beat as degraded with its figures, never down, and up again once it clears', async () => {
    const { clock, monitor, script, transitions, events } = setup();
    monitor.start();
    await settle();
    script.report = { impairment: 'pool saturated', figures: { waiting: 4 } };
    await clock.advance(10_000);
    assert.equal(monitor.state, 'degraded');
    assert.equal(monitor.snapshot().reason, 'pool saturated');
    assert.deepEqual(monitor.snapshot().figures, { waiting: 4 });
    script.report = { impairment: 'pool saturated', figures: { waiting: 7 } };
    await clock.advance(10_000);
    assert.deepEqual(monitor.snapshot().figures, { waiting: 7 }, 'figures follow every beat');
    script.report = { figures: { waiting: 0 } };
    await clock.advance(10_000);
    assert.equal(monitor.state, 'up');
    assert.deepEqual(monitor.snapshot().figures, { waiting: 0 });
    assert.deepEqual(transitions(), ['idle->connecting', 'connecting->up', 'up->degraded', 'degraded->up'], 'one transition per change, none per beat');
    assert.equal(events.filter((e) => e.type === 'heartbeat' && !e.ok).length, 0);
    assert.equal(script.calls.open, 1, 'never reconnected');
    await monitor.close(1_000);
  });

  it('declares a silent death within intervalMs + failureThreshold * timeoutMs when confirming', async () => {
    const { clock, monitor, script, events } = setup({ heartbeat: { failureThreshold: 3 } });
    monitor.start();
    await settle();
    const startedAt = clock.now();
    script.ping = 'hang';
    await clock.advance(10_000 + 3 * 2_000);
    const down = events.find((e) => e.type === 'state' && e.to === 'down');
    const degraded = events.find((e) => e.type === 'state' && e.to === 'degraded');
    assert.equal(degraded && degraded.at - startedAt, 12_000);
    assert.equal(down && down.at - startedAt, 16_000);
    assert.match(monitor.snapshot().reason, /heartbeat failed 3 time\(s\) in a row/);
    await monitor.close(1_000);
  });

  it('suspects a beat slower than its history before the deadline: degraded, then up when it answers', async () => {
    const { clock, monitor, script, transitions, events } = setup({ suspicion: { enabled: true, minSamples: 5, minStdDevMs: 50, phiThreshold: 8 } });
    script.pingDelayMs = 5;
    monitor.start();
    await settle();
    await clock.advance(5 * 10_000 + 100); // five beats of 5 ms: the history
    assert.equal(monitor.state, 'up');
    script.pingDelayMs = 1_500; // slow, but within the 2 000 ms deadline
    const beatAt = clock.now() + 10_000 - 100 + 5; // the last beat answered at +5 ms
    await clock.advance(10_000 - 100 + 1_600);
    const suspected = events.find((e): e is StateChangeEvent => e.type === 'state' && e.to === 'degraded');
    assert.ok(suspected, 'suspected before the answer');
    // mean 5 ms, deviation floored at 50 ms: phi 8 is ~5.2 deviations, so about 5 + 261 ms into the beat
    const intoBeat = suspected.at - beatAt;
    assert.ok(intoBeat > 250 && intoBeat < 320, `suspected ${intoBeat} ms into the beat`);
    assert.match(suspected.reason, /heartbeat unanswered after \d+ ms, usually 5 ms \(phi >= 8\)/);
    assert.equal(monitor.state, 'up', 'the answer came: up again');
    assert.deepEqual(transitions().slice(-2), ['up->degraded', 'degraded->up']);
    await monitor.close(1_000);
  });

  it('backs off exponentially up to the cap, fails after maxAttempts and fires onFailure once', async () => {
    const failures: string[] = [];
    const { clock, monitor, script, events } = setup({
      reconnect: { maxAttempts: 5 },
      failure: { onFailure: (snapshot) => void failures.push(snapshot.state) },
    });
    monitor.start();
    await settle();
    script.ping = 'fail';
    script.open = 'fail';
    await clock.advance(10_000);
    const downAt = clock.now();
    await clock.advance(200_000);
    const attempts = events.filter((e) => e.type === 'state' && e.to === 'reconnecting').map((e) => e.at - downAt);
    // delays 1 s, 2 s, 4 s, 8 s (cap), 8 s; then 'retry' goes on every maxDelayMs, quietly
    assert.deepEqual(attempts, [1_000, 3_000, 7_000, 15_000, 23_000]);
    assert.equal(monitor.snapshot().state, 'failed');
    assert.equal(failures.length, 1, 'onFailure fired once, although retries go on');
    assert.match(monitor.snapshot().reason, /gave up after \d+ reconnect attempt/);
    script.open = 'ok';
    script.ping = 'ok';
    await clock.advance(8_000);
    assert.equal(monitor.state, 'up', "the 'retry' policy heals a late recovery");
    await monitor.close(1_000);
  });

  it("signals one 'failed' per failure episode while the 'retry' policy goes on trying", async () => {
    const { clock, monitor, script, events, transitions } = setup({ reconnect: { maxAttempts: 2, maxDelayMs: 8_000 } });
    monitor.start();
    await settle();
    script.ping = 'fail';
    script.open = 'fail';
    await clock.advance(10_000 + 600_000); // a ten-minute outage
    const failed = events.filter((e) => e.type === 'state' && e.to === 'failed');
    assert.equal(failed.length, 1, `one 'failed' in ten minutes, got ${transitions().join(', ')}`);
    const during = monitor.snapshot();
    assert.equal(during.state, 'failed');
    assert.equal(during.since, failed[0]?.at, "'failed' holds since the episode's end of attempts");
    assert.ok(during.reconnectAttempts > 60, `the quiet retries are counted (${during.reconnectAttempts})`);
    assert.ok(during.nextAttemptAt !== undefined && during.nextAttemptAt > clock.now(), 'the next attempt is shown');
    script.open = 'ok';
    script.ping = 'ok';
    await clock.advance(8_000);
    assert.deepEqual(transitions().slice(-1), ['failed->up']);
    script.open = 'fail';
    script.ping = 'fail';
    await clock.advance(100_000);
    assert.equal(events.filter((e) => e.type === 'state' && e.to === 'failed').length, 2, 'a new episode fails anew');
    await monitor.close(1_000);
  });

  it('delivers events to every subscriber in the order the transitions happened, even when one reacts by closing', async () => {
    const { clock, monitor, script } = setup({ reconnect: { maxAttempts: 1 }, failure: { policy: 'stop' } });
    // The first subscriber does what the 'exit' policy does: it starts a close on 'failed'.
    monitor.events$.subscribe((event) => {
      if (event.type === 'state' && event.to === 'failed') void monitor.close(1_000);
    });
    const seen: string[] = [];
    monitor.events$.subscribe((event) => event.type === 'state' && seen.push(`${event.from}->${event.to}`));
    script.open = 'fail';
    monitor.start();
    await clock.advance(60_000);
    assert.deepEqual(seen.slice(-3), ['reconnecting->failed', 'failed->closing', 'closing->closed']);
  });

  it("stops trying under the 'stop' policy, leaving no timer", async () => {
    const { clock, monitor, script } = setup({ reconnect: { maxAttempts: 2 }, failure: { policy: 'stop' } });
    script.open = 'fail';
    monitor.start();
    await clock.advance(60_000);
    assert.equal(monitor.state, 'failed');
    assert.equal(script.calls.open, 3, 'the first connect and two reconnect attempts');
    assert.equal(clock.pendingTimers, 0);
    await monitor.close(1_000);
  });

  it('keeps jittered delays within [delay * (1 - jitter), delay]', async () => {
    let call = 0;
    const randoms = [0.999, 0.5, 0];
    const { clock, monitor, script, events } = setup(
      { heartbeat: { jitter: 0.2 }, reconnect: { jitter: 0.5 } },
      () => randoms[call++ % randoms.length] ?? 0,
    );
    monitor.start();
    await settle();
    const upAt = clock.now();
    await clock.advance(10_000);
    const firstBeat = events.find((e) => e.type === 'heartbeat');
    assert.ok(firstBeat && firstBeat.at - upAt >= 8_000 && firstBeat.at - upAt <= 10_000);
    script.ping = 'fail';
    await clock.advance(10_000);
    const down = events.find((e) => e.type === 'state' && e.to === 'down');
    await clock.advance(1_000);
    const retry = events.find((e) => e.type === 'state' && e.to === 'reconnecting');
    assert.ok(down && retry);
    const delay = retry.at - down.at;
    assert.ok(delay >= 500 && delay <= 1_000, `backoff ${delay} within [500, 1000]`);
    await monitor.close(1_000);
  });

  it('gives a beat whose deadline fired late, because the event loop was blocked, one grace period', async () => {
    const { clock, monitor, script } = setup();
    monitor.start();
    await settle();
    script.ping = 'hang';
    await clock.advance(10_000);
    clock.block(30_000); // a synchronous task held the loop; the answer sits unread in the socket
    const judged = clock.advance(0);
    script.hungPing?.();
    await judged;
    await clock.advance(500);
    assert.equal(monitor.state, 'up');
    assert.equal(monitor.snapshot().consecutiveFailures, 0);
    await monitor.close(1_000);
  });

  it('reacts to a loss the client reports at once, without waiting for a beat', async () => {
    const { monitor, script } = setup();
    monitor.start();
    await settle();
    script.lossListener?.(new Error('read ECONNRESET'));
    assert.equal(monitor.state, 'down');
    assert.match(monitor.snapshot().reason, /connection lost: read ECONNRESET/);
    await monitor.close(1_000);
    assert.equal(script.lossListener, undefined, 'unsubscribed on close');
  });

  it('reconnects at once on forceReconnect', async () => {
    const { clock, monitor, script, transitions } = setup();
    monitor.start();
    await settle();
    monitor.forceReconnect('operator asked');
    assert.equal(monitor.snapshot().reason, 'operator asked');
    await clock.advance(0);
    assert.equal(script.calls.open, 2);
    assert.deepEqual(transitions().slice(-3), ['up->down', 'down->reconnecting', 'reconnecting->up']);
    await monitor.close(1_000);
  });

  it('closes once, on purpose: no reconnect, no timer, no event after closed', async () => {
    const { clock, monitor, script, events, transitions } = setup();
    monitor.start();
    await settle();
    await Promise.all([monitor.close(1_000), monitor.close(1_000)]);
    assert.equal(script.calls.close, 1);
    assert.equal(monitor.state, 'closed');
    assert.equal(clock.pendingTimers, 0);
    const count = events.length;
    script.lossListener?.(new Error('late loss'));
    monitor.forceReconnect();
    await clock.advance(100_000);
    assert.equal(events.length, count);
    assert.equal(script.calls.open, 1);
    assert.deepEqual(transitions().slice(-2), ['up->closing', 'closing->closed']);
  });

  it('force-closes at the close deadline when the polite close hangs', async () => {
    const clock = new FakeClock();
    const { adapter } = makeAdapter();
    let forced = false;
    adapter.close = (signal) =>
      new Promise<void>((resolve) =>
        signal.addEventListener('abort', () => {
          forced = true;
          resolve();
        }),
      );
    const monitor = new ConnectionMonitor('db', adapter, resolveMonitorOptions('db'), { clock });
    monitor.start();
    await settle();
    const closed = monitor.close(5_000);
    await clock.advance(5_000);
    await closed;
    assert.equal(forced, true);
    assert.equal(monitor.state, 'closed');
    assert.match(monitor.snapshot().lastError ?? '', /close did not finish within 5000 ms/);
    assert.match(monitor.snapshot().reason, /closed on purpose, by force: .*close did not finish within 5000 ms/);
    assert.equal(clock.pendingTimers, 0);
  });

  it('still calls the adapter close, with an aborted signal, when the close is forced before it began', async () => {
    const clock = new FakeClock();
    const { adapter } = makeAdapter();
    const signals: AbortSignal[] = [];
    adapter.close = async (signal) => void signals.push(signal);
    const forcedMonitor = new ConnectionMonitor('db', adapter, resolveMonitorOptions('db'), { clock });
    forcedMonitor.start();
    await settle();
    const force = new AbortController();
    force.abort(new Error('second SIGTERM'));
    await forcedMonitor.close(5_000, force.signal);
    assert.equal(signals.length, 1, 'close() was called');
    assert.equal(signals[0]?.aborted, true, 'with a signal that says: by force, now');
    assert.equal(forcedMonitor.state, 'closed');
    assert.equal(clock.pendingTimers, 0);
  });

  it('gives a forced close a moment to finish, and no more, when the adapter ignores the signal', async () => {
    const clock = new FakeClock();
    const { adapter } = makeAdapter();
    adapter.close = () => new Promise<void>(() => undefined);
    const monitor = new ConnectionMonitor('db', adapter, resolveMonitorOptions('db'), { clock });
    monitor.start();
    await settle();
    const force = new AbortController();
    const closed = monitor.close(60_000, force.signal);
    force.abort(new Error('second SIGTERM'));
    await clock.advance(1_000);
    await closed;
    assert.equal(monitor.state, 'closed');
    assert.match(monitor.snapshot().reason, /by force: .*second SIGTERM/);
    assert.equal(clock.pendingTimers, 0);
  });

  it('never shows a password from a driver error', async () => {
    const { clock, monitor, script } = setup();
    monitor.start();
    await settle();
    script.ping = 'fail';
    await clock.advance(10_000);
    assert.doesNotMatch(JSON.stringify(monitor.snapshot()), /hunter2/);
    assert.match(monitor.snapshot().lastError ?? '', /postgres:\/\/\*\*\*@db:5432/);
    await monitor.close(1_000);
  });

  it('registers its schedule timer under one name per connection', async () => {
    const { clock, monitor } = setup();
    monitor.start();
    await settle();
    assert.deepEqual(clock.pendingNames, ['connection-health:db']);
    await monitor.close(1_000);
  });
});
