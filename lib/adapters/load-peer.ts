import { MissingDependencyError } from '../core/errors/missing-dependency.error.js';
import type { PeerNeed } from '../core/option-checker.js';

/**
 * Imports an optional peer dependency when a configured connection first needs it, so an app installs only
 * the client libraries it uses, and a missing one is reported with the command that fixes it.
 * The CommonJS build compiles this import() to require(), on purpose: every supported peer has a require
 * condition, Node >= 20.19 require()s an ES module, and Jest in its default mode runs a real import() only
 * with --experimental-vm-modules ("You need to run with a version of node that supports ES Modules in the VM API").
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
 * Verifies at bootstrap that an optional peer a configured feature needs is installed, by importing it as
 * the adapter will: a missing one would otherwise surface only at the first connect, and be retried for
 * ever. Imports rather than resolves: module resolution through the import meta-property is missing from
 * some test runners' loaders, and cannot even be parsed in code a test runner turned into CommonJS.
 */
export async function verifyPeer({ packageName, feature, place, orElse }: PeerNeed): Promise<void> {
  try {
    await loadPeer(packageName, feature);
  } catch (error) {
    if (!(error instanceof MissingDependencyError)) throw error;
    if (orElse) return verifyPeer({ packageName: orElse, feature, place }).catch((missing: unknown) => {
      throw missing instanceof MissingDependencyError ? new MissingDependencyError(packageName, feature, place, orElse) : missing;
    });
    throw new MissingDependencyError(packageName, feature, place);
  }
}

function isMissing(error: unknown, packageName: string): boolean {
  const code = (error as { code?: string }).code;
  const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
  return missing && String((error as Error).message).includes(packageName);
}
