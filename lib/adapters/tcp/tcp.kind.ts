import type { ConnectionDefinitionBase } from '../../core/connection-definition.js';
import { optionNames } from '../../core/option-checker.js';
import type { ConnectionKindSpec } from '../connection-kind.js';
import { checkKeepAlive } from '../tcp-keepalive.js';
import { TcpAdapter, type TcpAdapterOptions } from './tcp.adapter.js';

export interface TcpConnectionDefinition extends ConnectionDefinitionBase, TcpAdapterOptions {
  kind: 'tcp';
}

export const TCP_OPTIONS = optionNames<TcpAdapterOptions>({ host: true, port: true, mode: true, keepAlive: true });

/** A host:port reached by a TCP connect, or held open. */
export const tcpKind: ConnectionKindSpec<TcpConnectionDefinition> = {
  kind: 'tcp',
  options: TCP_OPTIONS,
  defaults: {},
  create(definition, _options, { check }) {
    check.text('host', definition.host);
    check.that(
      Number.isInteger(definition.port) && definition.port >= 1 && definition.port <= 65_535,
      'port',
      definition.port,
      'Use a whole number from 1 to 65535.',
    );
    check.oneOf('mode', definition.mode, ['probe', 'hold']);
    checkKeepAlive(check, definition.keepAlive);
    return new TcpAdapter(definition);
  },
};
