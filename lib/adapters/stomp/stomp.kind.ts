import type { ConnectionDefinitionBase } from '../../core/connection-definition.js';
import { ConnectionHealthConfigError } from '../../core/errors/connection-health-config.error.js';
import { messages } from '../../core/messages.js';
import type { ConnectionKindSpec } from '../connection-kind.js';
import { checkKeepAlive } from '../tcp-keepalive.js';
import { createStompAdapter } from './stomp-adapter.factory.js';
import { STOMP_OPTIONS, type StompAdapterOptions } from './stomp-options.js';

/** A STOMP session through @stomp/stompjs, over TCP or WebSocket, probed by a message round trip. */
export interface StompConnectionDefinition extends ConnectionDefinitionBase, StompAdapterOptions {
  kind: 'stomp';
}

/** A STOMP session; the package creates its clients, so a decorated property receives the live one and a method is refused. */
export const stompKind: ConnectionKindSpec<StompConnectionDefinition> = {
  kind: 'stomp',
  options: STOMP_OPTIONS,
  defaults: {},
  create(definition, options, { check, report }) {
    checkKeepAlive(check, definition.keepAlive);
    return createStompAdapter(definition.name, definition, options, check, report);
  },
  fromMember(options, member) {
    if (member.method) {
      throw new ConnectionHealthConfigError(messages.stompMemberIsMethod(member.name), options.name, '@MonitorConnection', member.name);
    }
    return { definition: options, keepsClient: true };
  },
};
