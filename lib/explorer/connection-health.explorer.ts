import { Injectable } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { connectionKind } from '../adapters/create-adapter.js';
import { CONNECTION_KINDS } from '../adapters/connection-kinds.js';
import type { StateChangeEvent } from '../core/connection-event.js';
import type { ConnectionLifecycle } from '../core/connection-lifecycle.js';
import { ConnectionHealthConfigError } from '../core/errors/connection-health-config.error.js';
import { messages } from '../core/messages.js';
import type { MonitoredMember } from '../decorators/monitor-connection.decorator.js';
import type { ConnectionDefinition } from '../interfaces/connection-definition.interface.js';
import { ConnectionHealthLogger } from '../logging/connection-health.logger.js';
import { ConnectionHealthMetadataAccessor } from './connection-health-metadata.accessor.js';

export interface DeclaredConnection {
  readonly definition: ConnectionDefinition;
  /** The decorator and its member, for error messages: `@MonitorConnection on MailWatcher.client`. */
  readonly declaredBy: string;
  /** Keeps the decorated property pointing at the connection's live client. */
  readonly onClient?: (client: unknown) => void;
}

export interface DeclaredHandler {
  readonly lifecycle: ConnectionLifecycle;
  /** Undefined: every connection. */
  readonly name?: string;
  readonly declaredBy: string;
  readonly handle: (event: StateChangeEvent) => unknown;
}

type Instance = Record<string | symbol, unknown>;

/** Finds decorated connections, heartbeats and lifecycle handlers on every provider and controller. */
@Injectable()
export class ConnectionHealthExplorer {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly accessor: ConnectionHealthMetadataAccessor,
    private readonly logger: ConnectionHealthLogger,
  ) {}

  explore(): { connections: DeclaredConnection[]; handlers: DeclaredHandler[] } {
    const connections: DeclaredConnection[] = [];
    const handlers: DeclaredHandler[] = [];
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const instance = wrapper.instance as Instance | undefined;
      const prototype = instance && typeof instance === 'object' ? Object.getPrototypeOf(instance) : undefined;
      if (!instance || !prototype) continue;
      const className = instance.constructor?.name ?? String(wrapper.name);
      const members = this.accessor.monitoredMembers(instance.constructor);
      const methods = this.scanner
        .getAllMethodNames(prototype)
        .filter((method) => this.accessor.heartbeat(prototype[method]) || this.accessor.lifecycles(prototype[method]).length);
      if (!members.length && !methods.length) continue;

      if (!wrapper.isDependencyTreeStatic()) {
        for (const member of members) this.logger.warn(messages.nonStaticProvider(`${className}.${String(member.propertyKey)}`, `connection "${member.options.name}"`));
        for (const method of methods) this.logger.warn(messages.nonStaticProvider(`${className}.${method}`, 'a heartbeat or handler'));
        continue;
      }
      for (const member of members) {
        connections.push(this.fromMember(instance, member, `${className}.${String(member.propertyKey)}`));
      }
      for (const method of methods) {
        const declaredBy = `${className}.${method}`;
        const fn = prototype[method] as (...args: unknown[]) => unknown;
        const heartbeat = this.accessor.heartbeat(fn);
        if (heartbeat) {
          if (fn.length > 1) {
            throw new ConnectionHealthConfigError(messages.heartbeatShape(declaredBy, fn.length), heartbeat.name, 'ping', declaredBy);
          }
          const ping = (signal: AbortSignal) => Promise.resolve(fn.call(instance, signal));
          connections.push({
            definition: { ...heartbeat.options, name: heartbeat.name, kind: 'custom', ping },
            declaredBy: `@ConnectionHeartbeat on ${declaredBy}`,
          });
        }
        for (const { lifecycle, name } of this.accessor.lifecycles(fn)) {
          handlers.push({ lifecycle, name, declaredBy, handle: (event) => fn.call(instance, event) });
        }
      }
    }
    return { connections, handlers };
  }

  /**
   * The member completes its connection as its kind says (a TypeORM member holds or returns the DataSource;
   * for IMAP a method is the client factory; a property receives the live client of a kind whose clients
   * the package creates). A kind without a member form is declared in forRoot().
   */
  private fromMember(instance: Instance, member: MonitoredMember, memberName: string): DeclaredConnection {
    const { options, propertyKey } = member;
    const declaredBy = `@MonitorConnection on ${memberName}`;
    const value = instance[propertyKey];
    const method = typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(instance) : undefined;
    const kind = (options as { kind?: unknown } | undefined)?.kind;
    const spec = connectionKind(kind);
    if (!spec?.fromMember) {
      const onMember = CONNECTION_KINDS.filter((each) => each.fromMember).map((each) => `"${each.kind}"`);
      const elsewhere = CONNECTION_KINDS.filter((each) => !each.fromMember).map((each) => each.kind);
      throw new ConnectionHealthConfigError(
        messages.invalidOption(
          declaredBy,
          'kind',
          kind,
          `Use ${listed(onMember, 'or')}: the kinds whose client a member holds. Declare ${listed(elsewhere, 'and')} connections ` +
            'in forRoot(), or make a method the heartbeat with @ConnectionHeartbeat().',
        ),
        String((options as { name?: unknown } | undefined)?.name),
        'kind',
        kind,
      );
    }
    const { definition, keepsClient } = spec.fromMember(options, { name: memberName, value, method });
    if (!keepsClient) return { definition, declaredBy };
    return { definition, declaredBy, onClient: (client: unknown) => void (instance[propertyKey] = client) };
  }
}

/** `a, b or c` */
function listed(words: readonly string[], last: 'and' | 'or'): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} ${last} ${words.at(-1)}`;
}
