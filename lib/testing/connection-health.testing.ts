import { CONNECTION_HEALTH_CLOCK, CONNECTION_HEALTH_MONITOR_SEAM } from '../connection-health.constants.js';
import type { ConnectionAdapter } from '../core/connection-adapter.interface.js';
import type { ConnectionMonitor } from '../core/connection-monitor.js';
import { messages } from '../core/messages.js';
import type { MonitorSeam } from '../orchestrator/monitor.seam.js';
import { ConnectionControl } from './connection.control.js';
import { FakeClock } from './fake-clock.js';

export interface ConnectionHealthTestingOptions {
  /**
   * The connections to control, by name. The others run as configured, against their real servers (on the
   * fake clock too). Default: every monitored connection, so the test needs no server at all.
   */
  readonly connections?: readonly string[];
  /** Where the fake clock starts, in milliseconds since the epoch. Default: the real time when created. */
  readonly startAt?: number;
}

/**
 * What `overrideProvider` of `@nestjs/testing`'s TestingModuleBuilder offers: typed by shape, so that this
 * entry point does not load @nestjs/testing itself.
 */
export interface ProviderOverridable<Builder> {
  overrideProvider(token: string): { useValue(value: unknown): Builder };
}

/**
 * Lets an app's tests drive its monitored connections, as `@nestjs/testing` lets them drive its providers:
 *
 * ```ts
 * const testing = new ConnectionHealthTesting();
 * const moduleRef = await testing.override(Test.createTestingModule({ imports: [AppModule] })).compile();
 * const app = moduleRef.createNestApplication();
 * await app.init();
 * await testing.connection('db').down('network cut'); // @OnConnectionLost handlers ran; /health answers 503
 * await testing.connection('db').up();                // the next reconnect attempt succeeded, on fake time
 * await testing.clock.advance(30_000);                // one heartbeat interval, in no real time
 * ```
 *
 * Each controlled connection's real adapter is still built (its options are checked as in production) but
 * never called: a stand-in answers for the far end as its ConnectionControl says, and the package's real
 * monitor, events, handlers, probes, indicator and metrics run on it. The package's timers run on
 * `clock`, a FakeClock: heartbeats, deadlines, reconnect backoff, staleness, the dead-man switch and the
 * shutdown drain delay wait until the test advances it (set `shutdown.drainDelayMs` to 0 in tests, or
 * advance the clock while `app.close()` runs). A management port (`healthController.port`) listens on any
 * free port instead of the configured one: `managementPort` tells which.
 */
export class ConnectionHealthTesting {
  private readonly fakeClock: FakeClock;
  /** Whether override() put the module under test on this clock and these stand-ins. */
  private overridden = false;
  private readonly controlled?: ReadonlySet<string>;
  private readonly controls = new Map<string, ConnectionControl>();
  /** Every connection the app under test monitors, once its module has initialized. */
  private readonly built = new Set<string>();
  private boundPort?: number;
  private readonly seam: MonitorSeam = {
    adapterFor: (name: string, real: ConnectionAdapter) => (this.isControlled(name) ? this.control(name).adapterFor(real) : real),
    monitorBuilt: (monitor: ConnectionMonitor) => {
      this.built.add(monitor.name);
      this.controls.get(monitor.name)?.attach(monitor);
    },
    // Jest and Vitest run test files in parallel, each with an app on the configured port: EADDRINUSE.
    managementPort: () => 0,
    managementPortBound: (port: number) => {
      this.boundPort = port;
    },
  };

  constructor(options: ConnectionHealthTestingOptions = {}) {
    this.fakeClock = new FakeClock(options.startAt ?? Date.now());
    if (options.connections) this.controlled = new Set(options.connections);
  }

  /**
   * Puts the package of the module under test on this fake clock and its controlled connections on
   * stand-ins: call it on `Test.createTestingModule(...)` before `compile()`. Returns the same builder.
   */
  override<Builder extends ProviderOverridable<Builder>>(builder: Builder): Builder {
    this.overridden = true;
    return builder
      .overrideProvider(CONNECTION_HEALTH_CLOCK)
      .useValue(this.fakeClock)
      .overrideProvider(CONNECTION_HEALTH_MONITOR_SEAM)
      .useValue(this.seam);
  }

  /**
   * The package's time in this test: advance it to run heartbeats and reconnect attempts. Only after override():
   * before it, no app runs on this clock, and a test advancing it would pass without testing anything.
   */
  get clock(): FakeClock {
    if (!this.overridden) throw new Error(messages.testingNotOverridden);
    return this.fakeClock;
  }

  /**
   * The port the app's management server listens on (`healthController.port`), once the app has
   * initialized: under test it takes any free port instead of the configured one, so that test files
   * running in parallel do not collide. Undefined when the app serves the probes as its own routes.
   */
  get managementPort(): number | undefined {
    return this.boundPort;
  }

  /** The control of a connection, by its name; usable before the app starts, to start it down or degraded. */
  connection(name: string): ConnectionControl {
    if (!this.isControlled(name)) throw new Error(messages.testingNotControlled(name, [...(this.controlled ?? [])]));
    // Before the app is built any name may come; after, a misspelt one would control nothing.
    if (this.built.size && !this.built.has(name)) throw new Error(messages.testingUnknownConnection(name, [...this.built]));
    return this.control(name);
  }

  private control(name: string): ConnectionControl {
    let control = this.controls.get(name);
    if (!control) {
      control = new ConnectionControl(name, this.fakeClock);
      this.controls.set(name, control);
    }
    return control;
  }

  private isControlled(name: string): boolean {
    return this.controlled?.has(name) ?? true;
  }
}
