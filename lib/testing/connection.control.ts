import type { ConnectionAdapter } from '../core/connection-adapter.interface.js';
import { stepTimerName, type ConnectionMonitor } from '../core/connection-monitor.js';
import { isClosing, isServing, type ConnectionState } from '../core/connection-state.js';
import { messages } from '../core/messages.js';
import { ControlledAdapter, type FarEnd } from './controlled.adapter.js';
import { settle, type FakeClock } from './fake-clock.js';

/** More steps than any finite reconnect schedule takes: a guard against a loop, never reached by a real one. */
const MAX_STEPS = 100_000;

/**
 * Drives one monitored connection in an app's tests, from `testing.connection(name)`. It changes what the
 * far end does (answers, refuses, answers impaired) and, where the package would only notice at its next
 * heartbeat or reconnect attempt, moves the fake clock to that moment. The package's own monitor makes every
 * transition, so handles, `events$`, the lifecycle decorators (@OnConnectionLost...), probes, the Terminus
 * indicator, metrics and logs see exactly what they see in production.
 *
 * Every method resolves once the connection is in the state it names. Called before the app has started
 * (before `app.init()`), a method only sets what the far end does: the connection then starts that way
 * (`down()` first: the first connect fails).
 */
export class ConnectionControl {
  private farEnd: FarEnd = { kind: 'reachable' };
  private monitor?: ConnectionMonitor;
  private adapter?: ControlledAdapter;

  /** @internal Made by ConnectionHealthTesting. */
  constructor(
    readonly name: string,
    private readonly clock: FakeClock,
  ) {}

  /**
   * The connection is lost, as when the server closes the socket: the client notices at once, the connection
   * is `down` with no time passing, and every reconnect attempt fails until `up()`. The reason reads as the
   * client's error, e.g. `connection lost: <reason>`.
   */
  async down(reason = 'connection lost in a test'): Promise<void> {
    this.farEnd = { kind: 'unreachable', reason };
    if (this.monitor && isServing(this.monitor.state)) this.adapter?.reportLoss(reason);
    await settle();
  }

  /**
   * The far end answers again: the fake clock moves to the next reconnect attempt (the backoff delay), or to
   * the next heartbeat for a degraded connection, and the connection is `up`.
   */
  async up(): Promise<void> {
    this.farEnd = { kind: 'reachable' };
    await this.until('up', (state) => state === 'up');
  }

  /**
   * The far end answers, impaired (as a saturated pool reads): the fake clock moves to the next heartbeat
   * (reconnecting first if the connection is down) and the connection is `degraded` with this reason.
   * Readiness still serves; `up()` restores it at the following heartbeat.
   */
  async degrade(reason = 'degraded in a test'): Promise<void> {
    this.farEnd = { kind: 'impaired', reason };
    await this.until('degraded', (state) => state === 'degraded');
  }

  /**
   * The far end stays unreachable until the package gives up: the connection is lost (if it serves), then
   * the fake clock moves through every reconnect attempt, with its real backoff, until the connection is
   * `failed` and onFailure and @OnConnectionFailed have run. Refused for `reconnect.maxAttempts: Infinity`
   * and for the failure policy 'exit', which would end the test process.
   */
  async fail(reason = 'unreachable in a test'): Promise<void> {
    if (this.monitor) {
      const { reconnect, failure } = this.monitor.options;
      if (reconnect.maxAttempts === Infinity) throw new Error(messages.testingNeverFails(this.name));
      if (failure.policy === 'exit') throw new Error(messages.testingWouldExit(this.name));
    }
    await this.down(reason);
    await this.until('failed', (state) => state === 'failed');
  }

  /** @internal The stand-in for the real adapter of this connection, in the next app built. */
  adapterFor(real: ConnectionAdapter): ConnectionAdapter {
    this.monitor = undefined;
    this.adapter = new ControlledAdapter(real, () => this.farEnd);
    return this.adapter;
  }

  /** @internal */
  attach(monitor: ConnectionMonitor): void {
    this.monitor = monitor;
  }

  /** Moves the fake clock from one scheduled step of this connection to the next until it is in `goal`. */
  private async until(goal: ConnectionState, reached: (state: ConnectionState) => boolean): Promise<void> {
    const monitor = this.monitor;
    await settle();
    if (!monitor || monitor.state === 'idle') return; // not started: it starts as the far end now says
    for (let step = 0; !reached(monitor.state); step++) {
      if (isClosing(monitor.state)) throw new Error(messages.testingClosed(this.name, goal));
      const dueIn = this.clock.dueIn(stepTimerName(this.name));
      if (dueIn === undefined || step >= MAX_STEPS) throw new Error(messages.testingStuck(this.name, goal, monitor.state));
      await this.clock.advance(dueIn);
    }
  }
}
