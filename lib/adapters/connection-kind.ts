import type { Clock } from '../core/clock.js';
import type { ConnectionAdapter } from '../core/connection-adapter.interface.js';
import type { ConnectionDefinitionBase } from '../core/connection-definition.js';
import type { MonitorOptions, MonitorOptionsInput } from '../core/monitor-options.js';
import type { OptionChecker } from '../core/option-checker.js';
import type { CallbackReport } from '../core/user-callback.js';

/**
 * The token of an app's provider: a class, a string or a symbol. The same values as Nest's InjectionToken
 * (string | symbol | Type | Abstract | Function, the last three all functions), written without Nest so
 * that a kind knows nothing of the framework that hosts it.
 */
export type ProviderToken = string | symbol | Function;

/** What an adapter takes from its surroundings rather than from its options. */
export interface AdapterContext {
  /** The monitor's clock: an adapter that measures time (an IMAP session's age) reads the same time. */
  readonly clock: Clock;
  /** Checks the kind's options; its messages name the connection, and the decorated member of one declared by a decorator. */
  readonly check: OptionChecker;
  /** Logs an app's callback that the adapter itself calls (a STOMP onMessage) and that failed. */
  readonly report: CallbackReport;
  /** Finds an app's provider by its token (a TypeORM DataSource); undefined when none has it, or outside an app. */
  readonly provider?: (token: ProviderToken) => unknown;
}

/** The member of an app's provider that a connection is declared on (@MonitorConnection). */
export interface DeclaringMember {
  /** `Class.member`, for messages. */
  readonly name: string;
  /** A property's value (or a getter's). */
  readonly value: unknown;
  /** A method, bound to its instance; undefined for a property. */
  readonly method?: () => unknown;
}

/**
 * One kind of connection, all a dispatcher needs of it: its definition's options, its defaults, and how to
 * check a definition and build the adapter. Each kind's folder exports one; connection-kinds.ts lists them.
 *
 * @typeParam D the kind's definition, with its `kind` literal
 * @typeParam M what a decorated member's options hold: D without what the member itself provides
 */
export interface ConnectionKindSpec<D extends ConnectionDefinitionBase & { kind: string }, M = D> {
  readonly kind: D['kind'];
  /** The options of this kind, beside those of every connection (CONNECTION_OPTIONS). */
  readonly options: readonly string[];
  /** Defaults of this kind, under the module's `defaults` and the connection's own options. */
  readonly defaults: MonitorOptionsInput;
  /** Checks the kind's options (and the client libraries they need, through `check.needsPeer`) and builds the adapter. */
  create(definition: D, options: MonitorOptions, context: AdapterContext): ConnectionAdapter;
  /**
   * For a kind that can be declared on a member of a provider: the definition the member completes, and
   * whether the member is kept pointing at the live client. Absent: the kind is declared in forRoot() only.
   */
  fromMember?(options: M, member: DeclaringMember): { readonly definition: D; readonly keepsClient: boolean };
}
