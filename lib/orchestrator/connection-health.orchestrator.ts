import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { DataSource } from 'typeorm';
import { checkConnection, createAdapter, kindDefaults } from '../adapters/create-adapter.js';
import type { Clock } from '../core/clock.js';
import { lifecycleOf } from '../core/connection-lifecycle.js';
import { ConnectionMonitor } from '../core/connection-monitor.js';
import { ConnectionHealthConfigError } from '../core/errors/connection-health-config.error.js';
import { messages } from '../core/messages.js';
import { OptionChecker } from '../core/option-checker.js';
import { layerOptions, resolveMonitorOptions } from '../core/resolve-monitor-options.js';
import { CONNECTION_HEALTH_CLOCK, CONNECTION_HEALTH_OPTIONS, CONNECTION_HEALTH_REGISTRATION } from '../connection-health.constants.js';
import { checkModuleOptions } from '../connection-health.options-check.js';
import { ConnectionHealthExplorer, type DeclaredHandler } from '../explorer/connection-health.explorer.js';
import type { ConnectionDefinition } from '../interfaces/connection-definition.interface.js';
import type { ConnectionHealthModuleOptions } from '../interfaces/connection-health-options.interface.js';
import { ConnectionHealthRegistry } from '../registry/connection-health.registry.js';
import { logTransition } from './transition-log.js';

const DECORATOR_NAMES = {
  connected: '@OnConnected',
  lost: '@OnConnectionLost',
  recovered: '@OnConnectionRecovered',
  failed: '@OnConnectionFailed',
} as const;

const FORCING_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * Builds a monitor per connection, from forRoot() and from decorated providers, when the module initializes
 * (so bad options stop the bootstrap), and starts them all once the app has bootstrapped.
 *
 * Shutdown is staged, and begins at onModuleDestroy, before any owner destroys a connection that a beat
 * would then try to revive: readiness turns 503 at once, the app keeps serving for the drain delay so load
 * balancers notice, then heartbeats stop and every connection closes politely, in parallel, within the
 * shutdown deadline; what is left is force-closed. A second SIGTERM or SIGINT forces at once.
 */
@Injectable()
export class ConnectionHealthOrchestrator
  implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown
{
  private readonly logger = new Logger('ConnectionHealth');
  private readonly monitors: ConnectionMonitor[] = [];
  private isDraining = false;
  private exiting = false;

  constructor(
    @Inject(CONNECTION_HEALTH_OPTIONS) private readonly options: ConnectionHealthModuleOptions,
    @Inject(CONNECTION_HEALTH_CLOCK) private readonly clock: Clock,
    private readonly registry: ConnectionHealthRegistry,
    private readonly explorer: ConnectionHealthExplorer,
    private readonly moduleRef: ModuleRef,
    @Inject(CONNECTION_HEALTH_REGISTRATION) private readonly registration: string,
  ) {}

  /** True from the first moment of shutdown: readiness answers 503. */
  get draining(): boolean {
    return this.isDraining;
  }

  onModuleInit(): void {
    checkModuleOptions(this.options, this.registration);
    const { connections = [] } = this.options;

    const declared = this.explorer.explore();
    connections.forEach((definition, index) => this.register(definition, `${this.registration} connections[${index}]`, false));
    for (const { definition, declaredBy, onClient } of declared.connections) {
      this.register(definition, declaredBy, true);
      if (onClient) this.registry.get(definition.name).clientChanges$().subscribe(onClient);
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
  }

  onApplicationBootstrap(): void {
    for (const monitor of this.monitors) monitor.start();
  }

  async onModuleDestroy(): Promise<void> {
    this.isDraining = true;
    const force = new AbortController();
    const forceNow = (signal: NodeJS.Signals) => {
      this.logger.warn(`${signal} during shutdown: closing every connection by force now`);
      force.abort(new Error(`forced by a second signal (${signal})`));
    };
    for (const signal of FORCING_SIGNALS) process.once(signal, forceNow);
    try {
      await this.sleep(this.options.shutdown?.drainDelayMs ?? 0, force.signal);
      await this.closeAll(force.signal);
    } finally {
      for (const signal of FORCING_SIGNALS) process.removeListener(signal, forceNow);
    }
  }

  onApplicationShutdown(signal?: string): void {
    // Nest re-raises the signal once the app is closed, which ends the process with 128 + signal.
    // Hearing it here instead lets the process end by itself, with code 0 for a clean stop.
    if (signal && this.options.shutdown?.exitZeroOnSignal !== false) process.once(signal, () => undefined);
  }

  /**
   * Logs the reason at fatal level, closes every connection within the shutdown deadline and exits with
   * `exitCode`: the failure policy 'exit' and the dead-man switch end here, and nothing else may exit.
   */
  async exitProcess(reason: string, exitCode: number): Promise<void> {
    if (this.exiting) return;
    this.exiting = true;
    this.isDraining = true;
    this.logger.fatal(`${reason}; exiting with code ${exitCode}`);
    process.exitCode = exitCode;
    await this.closeAll();
    process.exit(exitCode);
  }

  private closeAll(force?: AbortSignal): Promise<unknown> {
    const timeoutMs = this.options.shutdown?.timeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
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

  private register(definition: ConnectionDefinition, declaredBy: string, fromDecorator: boolean): void {
    const check = checkConnection(definition, declaredBy, fromDecorator);
    if (this.registry.has(definition.name)) {
      const message = messages.duplicateConnection(definition.name, declaredBy);
      throw new ConnectionHealthConfigError(message, definition.name, 'name', definition.name);
    }
    const { heartbeat, suspicion, reconnect, failure } = definition;
    const defaults = layerOptions(kindDefaults(definition.kind), this.options.defaults);
    const options = resolveMonitorOptions(definition.name, { heartbeat, suspicion, reconnect, failure }, defaults, check);
    const dataSource = definition.kind === 'typeorm' ? this.resolveDataSource(check, definition.dataSource) : undefined;
    const adapter = createAdapter(definition, options, { clock: this.clock, dataSource, check });
    const monitor = new ConnectionMonitor(definition.name, adapter, options, {
      clock: this.clock,
      reportHandlerError: (error, message) => this.logger.error(message, error instanceof Error ? error.stack : String(error)),
    });
    this.registry.register(monitor, adapter, definition.required ?? true);
    monitor.events$.subscribe((event) => {
      if (event.type !== 'state') return;
      logTransition(this.logger, event);
      if (event.to === 'failed' && options.failure.policy === 'exit') {
        // The user chose this: exit so that Docker's restart policy or the orchestrator replaces the container.
        void this.exitProcess(`${event.name} failed for good (failure policy 'exit'): ${event.reason}`, options.failure.exitCode);
      }
    });
    this.monitors.push(monitor);
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
        const report = (error: unknown) =>
          this.logger.error(
            messages.handlerFailed(monitor.name, `${DECORATOR_NAMES[lifecycle]} ${handler.declaredBy}`),
            error instanceof Error ? error.stack : String(error),
          );
        try {
          Promise.resolve(handler.handle(event)).catch(report);
        } catch (error) {
          report(error);
        }
      }
    });
  }

  private resolveDataSource(check: OptionChecker, given: unknown): DataSource {
    if (isDataSource(given)) return given;
    check.that(
      given !== undefined && given !== null,
      'dataSource',
      given,
      'Pass the DataSource, or the token of its provider (e.g. DataSource or getDataSourceToken(name)).',
    );
    let found: unknown;
    try {
      found = this.moduleRef.get(given as string, { strict: false });
    } catch {
      found = undefined;
    }
    check.that(
      isDataSource(found),
      'dataSource',
      typeof given === 'function' ? given.name : given,
      'No provider with that token holds a TypeORM DataSource. Register the DataSource as a provider ' +
        '(TypeOrmModule.forRoot does), import its module, or pass the instance itself.',
    );
    return found as DataSource;
  }
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

function isDataSource(value: unknown): value is DataSource {
  const candidate = value as Partial<DataSource> | null | undefined;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.initialize === 'function' &&
    typeof candidate.query === 'function' &&
    typeof candidate.options === 'object'
  );
}
