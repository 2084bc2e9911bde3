import {
  Inject,
  Injectable,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { checkConnection, createAdapter, kindDefaults } from '../adapters/create-adapter.js';
import { verifyPeer } from '../adapters/load-peer.js';
import type { ProviderToken } from '../adapters/connection-kind.js';
import type { Clock } from '../core/clock.js';
import { lifecycleOf } from '../core/connection-lifecycle.js';
import { ConnectionMonitor } from '../core/connection-monitor.js';
import { ConnectionHealthConfigError } from '../core/errors/connection-health-config.error.js';
import { messages } from '../core/messages.js';
import type { PeerNeed } from '../core/option-checker.js';
import { SecretScrubber } from '../core/secret-scrubber.js';
import { layerOptions, resolveMonitorOptions } from '../core/resolve-monitor-options.js';
import { callUser, type CallbackFailure } from '../core/user-callback.js';
import {
  CONNECTION_HEALTH_CLOCK,
  CONNECTION_HEALTH_MONITOR_SEAM,
  CONNECTION_HEALTH_OPTIONS,
  CONNECTION_HEALTH_REGISTRATION,
} from '../connection-health.constants.js';
import { checkModuleOptions } from '../connection-health.options-check.js';
import { ConnectionHealthExplorer, type DeclaredHandler } from '../explorer/connection-health.explorer.js';
import type { ConnectionDefinition } from '../interfaces/connection-definition.interface.js';
import type { ConnectionHealthModuleOptions } from '../interfaces/connection-health-options.interface.js';
import { ConnectionHealthLogger } from '../logging/connection-health.logger.js';
import { ConnectionHealthPublishers, MAX_FLUSH_MS } from '../publishers/connection-health.publishers.js';
import { ConnectionHealthRegistry } from '../registry/connection-health.registry.js';
import type { MonitorSeam } from './monitor.seam.js';
import { FORCED_EXIT_AFTER_MS, ShutdownSignals } from './shutdown-signals.js';
import { TransitionLog } from './transition-log.js';

const DECORATOR_NAMES = {
  connected: '@OnConnected',
  lost: '@OnConnectionLost',
  recovered: '@OnConnectionRecovered',
  failed: '@OnConnectionFailed',
} as const;

/**
 * Builds a monitor per connection, from forRoot() and from decorated providers, when the module initializes
 * (so bad options stop the bootstrap), and starts them all once the app has bootstrapped.
 *
 * Shutdown is staged, and begins at onModuleDestroy, before any owner destroys a connection that a beat
 * would then try to revive: readiness turns 503 at once, the app keeps serving for the drain delay so load
 * balancers notice, then heartbeats stop and every connection closes politely, in parallel, within the
 * shutdown deadline; what is left is force-closed. A second SIGTERM or SIGINT forces at once, and every
 * path ends the process (see ShutdownSignals).
 */
@Injectable()
export class ConnectionHealthOrchestrator
  implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown
{
  /**
   * The app's options hold its credentials, and the explorer and module ref reach every provider of the
   * app: private, so that no inspection of the probes (which hold this) shows them.
   */
  readonly #options: ConnectionHealthModuleOptions;
  readonly #explorer: ConnectionHealthExplorer;
  readonly #moduleRef: ModuleRef;
  private readonly monitors: ConnectionMonitor[] = [];
  private isDraining = false;
  private exiting = false;
  private readonly signals = new ShutdownSignals({
    // Readiness fails from the signal on, also while hooks of the app's own run before the package's.
    onFirst: () => (this.isDraining = true),
    onForce: (signal) => this.logger.warn(`${signal} during shutdown: closing every connection by force now`),
  });

  constructor(
    @Inject(CONNECTION_HEALTH_OPTIONS) options: ConnectionHealthModuleOptions,
    @Inject(CONNECTION_HEALTH_CLOCK) private readonly clock: Clock,
    private readonly registry: ConnectionHealthRegistry,
    explorer: ConnectionHealthExplorer,
    moduleRef: ModuleRef,
    @Inject(CONNECTION_HEALTH_REGISTRATION) private readonly registration: string,
    private readonly scrubber: SecretScrubber,
    private readonly logger: ConnectionHealthLogger,
    @Inject(CONNECTION_HEALTH_MONITOR_SEAM) private readonly seam: MonitorSeam,
    private readonly publishers: ConnectionHealthPublishers,
  ) {
    this.#options = options;
    this.#explorer = explorer;
    this.#moduleRef = moduleRef;
  }

  /** True from the first moment of shutdown: readiness answers 503. */
  get draining(): boolean {
    return this.isDraining;
  }

  async onModuleInit(): Promise<void> {
    const peers = [...checkModuleOptions(this.#options, this.registration).peers];
    this.scrubber.add(this.#options.secrets ?? []);
    const { connections = [] } = this.#options;

    const declared = this.#explorer.explore();
    connections.forEach((definition, index) => peers.push(...this.register(definition, `${this.registration} connections[${index}]`, false)));
    for (const { definition, declaredBy, onClient } of declared.connections) {
      peers.push(...this.register(definition, declaredBy, true));
      if (onClient) this.keepPropertyCurrent(definition.name, declaredBy, onClient);
    }

    const known = this.registry.names();
    // A warning, not an error: @InjectConnection names are collected process-wide, by classes that this
    // app may never instantiate; the handle itself throws UnknownConnectionError when used.
    for (const name of this.registry.unboundNames()) this.logger.warn(messages.injectedUnknown(name, known));
    for (const handler of declared.handlers) {
      if (handler.name !== undefined && !known.includes(handler.name)) {
        const message = messages.handlerForUnknown(handler.declaredBy, DECORATOR_NAMES[handler.lifecycle], handler.name, known);
        throw new ConnectionHealthConfigError(message, handler.name, 'name', handler.name);
      }
    }
    for (const monitor of this.monitors) this.dispatchLifecycle(monitor, declared.handlers);
    // Last, once every option is known good: a missing client library stops the bootstrap, with its install line.
    for (const peer of peers) await verifyPeer(peer);
  }

  onApplicationBootstrap(): void {
    this.signals.watch();
    for (const monitor of this.monitors) monitor.start();
  }

  async onModuleDestroy(): Promise<void> {
    this.isDraining = true;
    this.signals.shutdownBegins();
    const force = this.signals.force.signal;
    await this.sleep(this.#options.shutdown?.drainDelayMs ?? 0, force);
    await this.closeAll(force);
  }

  onApplicationShutdown(signal?: string): void {
    const { exitZeroOnSignal = true, drainDelayMs = 0, timeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS } = this.#options.shutdown ?? {};
    this.signals.shutdownEnds(signal, { exitZero: exitZeroOnSignal, boundMs: drainDelayMs + timeoutMs + FORCED_EXIT_AFTER_MS });
  }

  /**
   * Logs the reason at fatal level, closes every connection within the shutdown deadline and exits with
   * `exitCode`: the failure policy 'exit' and the dead-man switch end here, and nothing else may exit.
   * The publishers are flushed with what is left of that deadline (at most MAX_FLUSH_MS) first: the
   * transition that led here is the one alert that matters, and process.exit() would cut its POST.
   */
  async exitProcess(reason: string, exitCode: number): Promise<void> {
    if (this.exiting) return;
    this.exiting = true;
    this.isDraining = true;
    this.logger.fatal(`${reason}; exiting with code ${exitCode}`);
    process.exitCode = exitCode;
    const startedAt = Date.now();
    await this.closeAll();
    const timeoutMs = this.#options.shutdown?.timeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    await this.publishers.flush(Math.max(0, Math.min(MAX_FLUSH_MS, timeoutMs - (Date.now() - startedAt))));
    process.exit(exitCode);
  }

  private closeAll(force?: AbortSignal): Promise<unknown> {
    const timeoutMs = this.#options.shutdown?.timeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    return Promise.all(this.monitors.map((monitor) => monitor.close(timeoutMs, force)));
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (ms <= 0 || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.clock.setTimer(() => {
        signal.removeEventListener('abort', wake);
        resolve();
      }, ms);
      const wake = () => {
        this.clock.clearTimer(timer);
        resolve();
      };
      signal.addEventListener('abort', wake, { once: true });
    });
  }

  /** Builds the monitor of a connection; returns the optional peers it needs. */
  private register(definition: ConnectionDefinition, declaredBy: string, fromDecorator: boolean): readonly PeerNeed[] {
    const check = checkConnection(definition, declaredBy, fromDecorator);
    if (this.registry.has(definition.name)) {
      const message = messages.duplicateConnection(definition.name, declaredBy);
      throw new ConnectionHealthConfigError(message, definition.name, 'name', definition.name);
    }
    const { heartbeat, suspicion, reconnect, failure } = definition;
    const defaults = layerOptions(kindDefaults(definition.kind), this.#options.defaults);
    const options = resolveMonitorOptions(definition.name, { heartbeat, suspicion, reconnect, failure }, defaults, check);
    const report = this.registry.reportCallbackFailure;
    const provider = (token: ProviderToken) => this.provider(token);
    // Built (and so checked) even when a test stands in for it: a test must not hide a configuration error.
    const real = createAdapter(definition, options, { clock: this.clock, check, report, provider });
    const adapter = this.seam.adapterFor(definition.name, real);
    for (const warning of check.warnings) this.logger.warn(warning);
    const monitor = new ConnectionMonitor(definition.name, adapter, options, { clock: this.clock, reportHandlerError: report, scrubber: this.scrubber });
    this.registry.register(monitor, adapter, definition.required ?? true);
    this.seam.monitorBuilt(monitor);
    const log = new TransitionLog(this.logger);
    monitor.events$.subscribe((event) => {
      if (event.type !== 'state') return;
      log.write(event);
      if (event.to === 'failed' && options.failure.policy === 'exit') {
        // The user chose this: exit so that Docker's restart policy or the orchestrator replaces the container.
        void this.exitProcess(`${event.name} failed for good (failure policy 'exit'): ${event.reason}`, options.failure.exitCode);
      }
    });
    this.monitors.push(monitor);
    return check.peers;
  }

  /** Calls the lifecycle handlers of a connection, never awaiting them and never letting them break the monitor. */
  private dispatchLifecycle(monitor: ConnectionMonitor, handlers: readonly DeclaredHandler[]): void {
    const mine = handlers.filter((handler) => handler.name === undefined || handler.name === monitor.name);
    if (!mine.length) return;
    let wasUp = false;
    monitor.events$.subscribe((event) => {
      if (event.type !== 'state') return;
      const lifecycle = lifecycleOf(event, wasUp);
      wasUp ||= event.to === 'up';
      for (const handler of mine) {
        if (handler.lifecycle !== lifecycle) continue;
        const place = `the ${DECORATOR_NAMES[lifecycle]} handler ${handler.declaredBy}`;
        callUser(() => handler.handle(event), (error, how) => this.reportFailure(monitor.name, place, how, error));
      }
    });
  }

  /** Keeps a decorated property pointing at the live client; a setter of the app's that throws is logged. */
  private keepPropertyCurrent(connection: string, declaredBy: string, onClient: (client: unknown) => void): void {
    const place = `setting the property of ${declaredBy}`;
    this.registry
      .get(connection)
      .clientChanges$()
      .subscribe((client) => callUser(() => onClient(client), (error, how) => this.reportFailure(connection, place, how, error)));
  }

  private reportFailure(connection: string, place: string, how: CallbackFailure, error: unknown): void {
    this.registry.reportCallbackFailure(error, messages.callbackFailed(connection, place, how, this.scrubber.describe(error)));
  }

  /** An app's provider by its token, from any module (a DataSource that TypeOrmModule registered); undefined when none has it. */
  private provider(token: ProviderToken): unknown {
    try {
      return this.#moduleRef.get(token as string, { strict: false });
    } catch {
      return undefined;
    }
  }
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
