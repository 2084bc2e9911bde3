import type { OptionChecker } from '../core/option-checker.js';

/**
 * Parses a URL given as an option, after checking it is a non-empty string. `shown` is what a message may
 * say of it: the scheme and host, never the userinfo, which may hold a password.
 */
export function parseUrlOption(check: OptionChecker, option: string, url: string): { readonly parsed?: URL; readonly shown: string } {
  check.text(option, url);
  try {
    const parsed = new URL(url);
    return { parsed, shown: `${parsed.protocol}//${parsed.host}` };
  } catch {
    return { shown: '(not a URL)' };
  }
}
