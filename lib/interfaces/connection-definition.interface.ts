import type { InjectionToken } from '@nestjs/common';
import type { CustomConnection } from '../adapters/custom/custom.adapter.js';
import type { ImapFlowAdapterOptions, NodeImapAdapterOptions } from '../adapters/imap/imap-adapter.options.js';
import type { StompAdapterOptions } from '../adapters/stomp/stomp-options.js';
import type { TcpAdapterOptions } from '../adapters/tcp/tcp.adapter.js';
import type { DataSourceLike } from '../adapters/typeorm/data-source-like.js';
import type { TypeOrmAdapterOptions } from '../adapters/typeorm/typeorm.adapter.js';
import type { MonitorOptionsInput } from '../core/monitor-options.js';

interface ConnectionDefinitionBase extends MonitorOptionsInput {
  /** Unique name: the key in health bodies and in the registry. */
  name: string;
  /** A required connection decides readiness; an optional one that is down only makes health `degraded`. Default true. */
  required?: boolean;
}

export interface TypeOrmConnectionDefinition extends ConnectionDefinitionBase, Omit<TypeOrmAdapterOptions, 'connectTimeoutMs'> {
  kind: 'typeorm';
  /** The DataSource itself, or the token of its provider (e.g. `DataSource`, or `getDataSourceToken('orders')`). */
  dataSource: DataSourceLike | InjectionToken;
}

export interface TcpConnectionDefinition extends ConnectionDefinitionBase, TcpAdapterOptions {
  kind: 'tcp';
}

export interface CustomConnectionDefinition extends ConnectionDefinitionBase, CustomConnection {
  kind: 'custom';
}

export interface ImapFlowConnectionDefinition extends ConnectionDefinitionBase, ImapFlowAdapterOptions {
  kind: 'imap';
}

export interface NodeImapConnectionDefinition extends ConnectionDefinitionBase, NodeImapAdapterOptions {
  kind: 'imap';
}

/** An IMAP session kept alive through `client: 'imapflow'` or `client: 'node-imap'`. */
export type ImapConnectionDefinition = ImapFlowConnectionDefinition | NodeImapConnectionDefinition;

/** A STOMP session through @stomp/stompjs, over TCP or WebSocket, probed by a message round trip. */
export interface StompConnectionDefinition extends ConnectionDefinitionBase, StompAdapterOptions {
  kind: 'stomp';
}

/** One monitored connection, as given to ConnectionHealthModule.forRoot(). */
export type ConnectionDefinition =
  | TypeOrmConnectionDefinition
  | TcpConnectionDefinition
  | CustomConnectionDefinition
  | ImapConnectionDefinition
  | StompConnectionDefinition;
