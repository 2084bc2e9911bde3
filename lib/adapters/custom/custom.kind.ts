import type { ConnectionDefinitionBase } from '../../core/connection-definition.js';
import { optionNames } from '../../core/option-checker.js';
import type { ConnectionKindSpec } from '../connection-kind.js';
import { CustomAdapter, type CustomConnection } from './custom.adapter.js';

export interface CustomConnectionDefinition extends ConnectionDefinitionBase, CustomConnection {
  kind: 'custom';
}

export const CUSTOM_OPTIONS = optionNames<CustomConnection>({ ping: true, open: true, close: true, target: true });

/** Anything with a ping of the app's own (also what @ConnectionHeartbeat declares). */
export const customKind: ConnectionKindSpec<CustomConnectionDefinition> = {
  kind: 'custom',
  options: CUSTOM_OPTIONS,
  defaults: {},
  create(definition, _options, { check }) {
    check.fn('ping', definition.ping, true, '(signal: AbortSignal) => Promise<unknown>');
    check.fn('open', definition.open, false, '(signal: AbortSignal) => Promise<unknown>');
    check.fn('close', definition.close, false, '(signal: AbortSignal) => Promise<unknown>');
    if (definition.target !== undefined) check.text('target', definition.target);
    return new CustomAdapter(definition);
  },
};
