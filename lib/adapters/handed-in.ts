import type { OptionChecker } from '../core/option-checker.js';
import type { ProviderToken } from './connection-kind.js';

/**
 * What an option naming the app's own client gives: the client itself, or, for a token (a provider's name,
 * symbol or class) that is not one, what the app's provider of that token holds. A token nothing provides is
 * refused with `hint`; the kind then checks the shape of what came back.
 */
export function handedIn(
  check: OptionChecker,
  option: string,
  given: unknown,
  isClient: (value: unknown) => boolean,
  provider: ((token: ProviderToken) => unknown) | undefined,
  hint: string,
): unknown {
  if (isClient(given) || !['string', 'symbol', 'function'].includes(typeof given)) return given;
  const provided = provider?.(given as ProviderToken);
  check.that(provided !== undefined, option, typeof given === 'function' ? given.name : given, hint);
  return provided;
}
