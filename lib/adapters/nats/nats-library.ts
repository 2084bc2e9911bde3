import { MissingDependencyError } from '../../core/errors/missing-dependency.error.js';
import { loadPeer } from '../load-peer.js';
import type { NatsConnectionLike } from './nats-like.js';

/** nats.js 2.x (`nats`), or 3.x (`@nats-io/transport-node`, the NATS transport of Nest 12's ClientNats). */
export type NatsLibraryName = 'nats' | '@nats-io/transport-node';

export const NATS_2 = 'nats' satisfies NatsLibraryName;
export const NATS_3 = '@nats-io/transport-node' satisfies NatsLibraryName;
export const NATS_FEATURE = 'NATS connections';

/** What the package calls of either library: both export connect() with the same options for what it sets. */
interface NatsLibrary {
  connect(options: Record<string, unknown>): Promise<unknown>;
}

/**
 * The library that made `connection`, so that the side connection judging its flow is made by the same one:
 * an app of Nest 12 has only 3.x. Told structurally, by a public method: 2.x connections carry jetstream()
 * (and jetstreamManager(), services), which 3.x moved out of the connection into their own packages
 * (@nats-io/jetstream, ...). Internals (the transport's version, where status iterators are kept) are not read.
 */
export function libraryOf(connection: NatsConnectionLike): NatsLibraryName {
  return typeof (connection as { jetstream?: unknown }).jetstream === 'function' ? NATS_2 : NATS_3;
}

/**
 * connect() of `library`; without one (the package's own connection), of nats 2.x, else of 3.x when only it is
 * installed. A library missing is said with the command that installs it (both, when neither is).
 */
export async function natsConnect(library?: NatsLibraryName): Promise<(options: Record<string, unknown>) => Promise<NatsConnectionLike>> {
  const load = async (name: NatsLibraryName) => (await loadPeer<NatsLibrary>(name, NATS_FEATURE)).connect as (options: Record<string, unknown>) => Promise<NatsConnectionLike>;
  if (library) return load(library);
  try {
    return await load(NATS_2);
  } catch (error) {
    if (!(error instanceof MissingDependencyError)) throw error;
    return load(NATS_3).catch((missing: unknown) => {
      throw missing instanceof MissingDependencyError ? new MissingDependencyError(NATS_2, NATS_FEATURE, undefined, NATS_3) : missing;
    });
  }
}
