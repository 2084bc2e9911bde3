import type { ConnectionAdapter } from '../core/connection-adapter.interface.js';
import { CONNECTION_OPTIONS } from '../core/connection-definition.js';
import type { MonitorOptions, MonitorOptionsInput } from '../core/monitor-options.js';
import { OptionChecker } from '../core/option-checker.js';
import type { AdapterContext, ConnectionKindSpec } from './connection-kind.js';
import { CONNECTION_KINDS, type ConnectionKind, type KindDefinition } from './connection-kinds.js';

/** A spec of any kind, as the dispatcher sees it: the table's union, whose parameters cannot be matched to a definition statically. */
type AnyKindSpec = ConnectionKindSpec<KindDefinition, unknown>;

const KIND_NAMES = CONNECTION_KINDS.map((spec) => spec.kind);

/** The options of each kind beside those of every connection; each list sits beside its kind's checks. */
export const KIND_OPTIONS: Readonly<Record<ConnectionKind, readonly string[]>> = Object.fromEntries(
  CONNECTION_KINDS.map((spec) => [spec.kind, spec.options]),
) as Record<ConnectionKind, readonly string[]>;

/** The spec of a kind; undefined for a kind the package does not know (or no kind at all). */
export function connectionKind(kind: unknown): AnyKindSpec | undefined {
  return CONNECTION_KINDS.find((spec) => spec.kind === kind) as AnyKindSpec | undefined;
}

/** Defaults of a kind, under the module's and the connection's own. */
export function kindDefaults(kind: ConnectionKind): MonitorOptionsInput {
  return connectionKind(kind)?.defaults ?? {};
}

/**
 * The first check of a connection, wherever it was declared: an object with a name, a known kind, and no
 * key its kind does not take. Returns the checker of its options, whose messages name the connection, and
 * the decorated member too for one declared by a decorator (its name alone does not say where to look).
 *
 * @param declaredBy where the definition comes from: `ConnectionHealthModule.forRoot() connections[0]`, or
 *   a decorated member, e.g. `@MonitorConnection on MailWatcher.client`
 */
export function checkConnection(definition: KindDefinition, declaredBy: string, fromDecorator: boolean): OptionChecker {
  const entry = new OptionChecker('?', declaredBy);
  entry.that(
    typeof definition === 'object' && definition !== null && !Array.isArray(definition),
    'connection',
    definition,
    "Pass an object such as { name: 'db', kind: 'typeorm', dataSource: DataSource }.",
  );
  entry.text('name', definition.name);
  const check = new OptionChecker(definition.name, `Connection "${definition.name}"${fromDecorator ? ` (${declaredBy})` : ''}`);
  check.oneOf('kind', definition.kind, KIND_NAMES, false);
  const owner = `${/^[aeiou]/.test(definition.kind) ? 'an' : 'a'} ${definition.kind} connection`;
  check.knownKeys(undefined, definition, [...CONNECTION_OPTIONS, ...KIND_OPTIONS[definition.kind]], owner);
  check.oneOf('required', definition.required, [true, false]);
  return check;
}

/**
 * Checks the kind-specific options of a connection, and that the client library it needs is installed,
 * and builds its adapter. `context.check` defaults to a checker whose messages name the connection only.
 */
export function createAdapter(
  definition: KindDefinition,
  options: MonitorOptions,
  context: Omit<AdapterContext, 'check'> & { readonly check?: OptionChecker },
): ConnectionAdapter {
  const check = context.check ?? new OptionChecker(definition.name);
  const spec = connectionKind(definition.kind);
  if (!spec) {
    check.oneOf('kind', definition.kind, KIND_NAMES, false);
    throw new Error('unreachable');
  }
  return spec.create(definition, options, { ...context, check });
}
