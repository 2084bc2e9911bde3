import { MissingDependencyError } from '../core/errors/missing-dependency.error.js';

/**
 * Imports an optional peer dependency when a configured connection first needs it, so an app installs only
 * the client libraries it uses, and a missing one is reported with the command that fixes it.
 */
export async function loadPeer<T>(packageName: string, feature: string): Promise<T> {
  try {
    return (await import(packageName)) as T;
  } catch (error) {
    if (isMissing(error, packageName)) throw new MissingDependencyError(packageName, feature);
    throw error;
  }
}

/**
 * Checks at bootstrap that an optional peer a configured feature needs is installed, resolving it as
 * loadPeer() will import it, without loading it yet. A missing one would otherwise surface only at the
 * first connect, and be retried for ever; `place` names where the feature was configured.
 */
export function requirePeer(packageName: string, feature: string, place: string): void {
  // Some test runners' module loaders (Jest's ESM mode) have no import.meta.resolve: loadPeer() then
  // reports a missing peer at the first connect instead, with the same message.
  if (typeof (import.meta as { resolve?: unknown }).resolve !== 'function') return;
  try {
    import.meta.resolve(packageName);
  } catch (error) {
    if (isMissing(error, packageName)) throw new MissingDependencyError(packageName, feature, place);
    throw error;
  }
}

function isMissing(error: unknown, packageName: string): boolean {
  const code = (error as { code?: string }).code;
  const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
  return missing && String((error as Error).message).includes(packageName);
}
