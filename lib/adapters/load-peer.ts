import { MissingDependencyError } from '../core/errors/missing-dependency.error.js';

/**
 * Imports an optional peer dependency when a configured connection first needs it, so an app installs only
 * the client libraries it uses, and a missing one is reported with the command that fixes it.
 */
export async function loadPeer<T>(packageName: string, feature: string): Promise<T> {
  try {
    return (await import(packageName)) as T;
  } catch (error) {
    const code = (error as { code?: string }).code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    if (missing && String((error as Error).message).includes(packageName)) {
      throw new MissingDependencyError(packageName, feature);
    }
    throw error;
  }
}
