import { messages } from '../messages.js';

/** An optional peer dependency that a configured feature needs is not installed. */
export class MissingDependencyError extends Error {
  override readonly name = 'MissingDependencyError';

  constructor(
    readonly packageName: string,
    readonly feature: string,
    /** Where the feature was configured, e.g. `Connection "mail"`, when known. */
    readonly place?: string,
    /** Another package that serves the feature as well, named in the message beside packageName. */
    readonly orElse?: string,
  ) {
    super(messages.missingDependency(packageName, feature, place, orElse));
  }
}
