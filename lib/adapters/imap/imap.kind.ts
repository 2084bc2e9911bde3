import type { ConnectionDefinitionBase } from '../../core/connection-definition.js';
import type { ConnectionKindSpec } from '../connection-kind.js';
import { createImapAdapter, IMAP_OPTIONS } from './imap-adapter.factory.js';
import type { ImapFlowAdapterOptions, NodeImapAdapterOptions } from './imap-adapter.options.js';

export interface ImapFlowConnectionDefinition extends ConnectionDefinitionBase, ImapFlowAdapterOptions {
  kind: 'imap';
}

export interface NodeImapConnectionDefinition extends ConnectionDefinitionBase, NodeImapAdapterOptions {
  kind: 'imap';
}

/** An IMAP session kept alive through `client: 'imapflow'` or `client: 'node-imap'`. */
export type ImapConnectionDefinition = ImapFlowConnectionDefinition | NodeImapConnectionDefinition;

/**
 * An IMAP session. It idles for minutes between commands by nature, so a NOOP every 2 minutes keeps it
 * well under a 350-600 s load balancer idle timeout without chatter. The package creates a client per
 * session: a decorated method is the client factory, a decorated property receives the live client.
 */
export const imapKind: ConnectionKindSpec<
  ImapConnectionDefinition,
  Omit<ImapFlowConnectionDefinition, 'factory'> | Omit<NodeImapConnectionDefinition, 'factory'>
> = {
  kind: 'imap',
  options: IMAP_OPTIONS,
  defaults: { heartbeat: { intervalMs: 120_000 } },
  create: (definition, options, { check, clock }) => createImapAdapter(definition, options, check, clock),
  fromMember: (options, { method }) =>
    method
      ? { definition: { ...options, factory: method } as ImapConnectionDefinition, keepsClient: false }
      : { definition: options as ImapConnectionDefinition, keepsClient: true },
};
