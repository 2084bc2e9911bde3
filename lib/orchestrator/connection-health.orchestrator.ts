import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { DataSource } from 'typeorm';
import { createAdapter } from '../adapters/create-adapter.js';
import type { Clock } from '../core/clock.js';
import type { StateChangeEvent } from '../core/connection-event.js';
import { lifecycleOf } from '../core/connection-lifecycle.js';
import { ConnectionMonitor } from '../core/connection-monitor.js';
import { ConnectionHealthConfigError } from '../core/errors/connection-health-config.error.js';
import { messages } from '../core/messages.js';
import { OptionChecker } from '../core/option-checker.js';
import { resolveMonitorOptions } from '../core/resolve-monitor-options.js';
import {
  CONNECTION_HEALTH_CLOCK,
  CONNECTION_HEALTH_OPTIONS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
} from '../connection-health.constants.js';
import { ConnectionHealthExplorer, type DeclaredHandler } from '../explorer/connection-health.explorer.js';
import type { ConnectionDefinition } from '../interfaces/connection-definition.interface.js';
import type { ConnectionHealthModuleOptions } from '../interfaces/connection-health-options.interface.js';
import { ConnectionHealthRegistry } from '../registry/connection-health.registry.js';

const FOR_ROOT = 'ConnectionHealthModule.forRoot()';
const DECORATOR_NAMES = {
  connected: '@OnConnected',
  lost: '@OnConnectionLost',
  recovered: '@OnConnectionRecovered',
  failed: '@OnConnectionFailed',
} as const;

/**
 * Builds a monitor per connection, from forRoot() and from decorated providers, when the module initializes
 * (so bad options stop the bootstrap), starts them all once the app has bootstrapped, and closes them in
 * parallel, under one deadline, as soon as the app begins to shut down: before any owner destroys a
 * connection that a beat would then try to revive.
 */
@Injectable()
export class ConnectionHealthOrchestrator implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('ConnectionHealth');
  private readonly monitors: ConnectionMonitor[] = [];

  constructor(
    @Inject(CONNECTION_HEALTH_OPTIONS) private readonly options: ConnectionHealthModuleOptions,
    @Inject(CONNECTION_HEALTH_CLOCK) private readonly clock: Clock,
    private readonly registry: ConnectionHealthRegistry,
    private readonly explorer: ConnectionHealthExplorer,
    private readonly moduleRef: ModuleRef,
  ) {}

  onModuleInit(): void {
    const { connections = [], defaults, shutdownTimeoutMs } = this.options;
    const check = new OptionChecker('*');
    check.that(Array.isArray(connections), 'connections', connections, 'Pass an array of connection definitions.');
    if (shutdownTimeoutMs !== undefined) check.duration('shutdownTimeoutMs', shutdownTimeoutMs);
    resolveMonitorOptions('*', {}, defaults); // module-wide defaults are checked even with no connection

    const declared = this.explorer.explore();
    for (const definition of connections) this.register(definition, FOR_ROOT);
    for (const { definition, declaredBy } of declared.connections) this.register(definition, declaredBy);

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
    const timeoutMs = this.options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    await Promise.all(this.monitors.map((monitor) => monitor.close(timeoutMs)));
  }

  private register(definition: ConnectionDefinition, declaredBy: string): void {
    const check = new OptionChecker(typeof definition?.name === 'string' ? definition.name : '?');
    check.text('name', definition?.name);
    if (this.registry.has(definition.name)) {
      const message = messages.duplicateConnection(definition.name, declaredBy);
      throw new ConnectionHealthConfigError(message, definition.name, 'name', definition.name);
    }
    check.oneOf('required', definition.required, [true, false]);
    const { heartbeat, reconnect, failure } = definition;
    const options = resolveMonitorOptions(definition.name, { heartbeat, reconnect, failure }, this.options.defaults);
    const dataSource = definition.kind === 'typeorm' ? this.resolveDataSource(definition.name, definition.dataSource) : undefined;
    const adapter = createAdapter(definition, options, dataSource);
    const monitor = new ConnectionMonitor(definition.name, adapter, options, {
      clock: this.clock,
      reportHandlerError: (error, message) => this.logger.error(message, error instanceof Error ? error.stack : String(error)),
    });
    this.registry.register(monitor, adapter, definition.required ?? true);
    monitor.events$.subscribe((event) => {
      if (event.type === 'state') this.logTransition(event, options.failure.policy, options.failure.exitCode);
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

  private resolveDataSource(connection: string, given: unknown): DataSource {
    if (isDataSource(given)) return given;
    const check = new OptionChecker(connection);
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

  private logTransition(event: StateChangeEvent, policy: string, exitCode: number): void {
    const line = `${event.name}: ${event.from} -> ${event.to} (${event.reason})`;
    if (event.to === 'down') this.logger.warn(line);
    else if (event.to === 'up' && event.from !== 'connecting') this.logger.log(line);
    else if (event.to === 'failed') {
      if (policy !== 'exit') return this.logger.error(line);
      // The user chose this: exit so that Docker's restart policy or the orchestrator replaces the container.
      this.logger.fatal(`${line}; exiting with code ${exitCode} (failure policy 'exit')`);
      process.exit(exitCode);
    }
  }
}

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
