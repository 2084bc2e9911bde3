import { ConnectionHealthConfigError } from './errors/connection-health-config.error.js';
import { describe, messages, UNSHOWN_NUMBER, UNSHOWN_STRING } from './messages.js';

/** Node clamps longer timer delays to 1 ms with a warning: a typo in minutes would beat in a busy loop. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The option names of an options type, for OptionChecker.knownKeys(). Listed as an object so that the
 * compiler keeps the list and the type equal: it refuses a name the type lacks, and one the list misses
 * (a new option would otherwise be refused at bootstrap as unknown).
 */
export function optionNames<T>(names: { readonly [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(names);
}

/** An optional peer a configured feature needs, and where that feature was configured. */
export interface PeerNeed {
  readonly packageName: string;
  readonly feature: string;
  readonly place: string;
  /** Another package that serves the feature as well: either one installed will do. */
  readonly orElse?: string;
}

/** Options whose string value may be a credential: `secrets`, `auth.pass`, `passcode`, `tls`, a header (a URL is shown without its userinfo). */
const SECRET_OPTION = /pass|secret|token|tls|key|auth|header|credential/i;

/** Checks option values, throwing a ConnectionHealthConfigError that names the place, option, value and fix. */
export class OptionChecker {
  /** Optional peers the checked options need: verified at bootstrap, after every option check. */
  readonly peers: PeerNeed[] = [];
  /** Options that work but put something at risk: logged at bootstrap as warnings, each naming the place. */
  readonly warnings: string[] = [];

  /**
   * @param connection the connection's name, kept on the error ('*' for the module's own options)
   * @param place how messages name where the options were given: `Connection "db"`,
   *   `Connection "mail" (@MonitorConnection on MailWatcher.client)`, `ConnectionHealthModule.forRoot()`
   * @param prefix put before every option name: `defaults.` for the module's defaults of every connection
   */
  constructor(
    readonly connection: string,
    readonly place = `Connection "${connection}"`,
    private readonly prefix = '',
  ) {}

  /** Notes that these options need an optional peer (verified later: checking loads it). */
  needsPeer(packageName: string, feature: string, orElse?: string): void {
    this.peers.push({ packageName, feature, place: this.place, ...(orElse ? { orElse } : {}) });
  }

  /** Notes a warning about these options; `text` says what is at risk and which option silences it. */
  warn(text: string): void {
    this.warnings.push(`${this.place}: ${text}`);
  }

  that(ok: boolean, option: string, value: unknown, fix: string): void {
    if (ok) return;
    const path = `${this.prefix}${option}`;
    // A string or number under a credential's option is never shown, nor kept on the error: the bootstrap
    // fails before the package learns any secret, and Node prints an error's fields with it.
    const secret = SECRET_OPTION.test(path);
    const shown = secret && typeof value === 'string' ? UNSHOWN_STRING : secret && typeof value === 'number' ? UNSHOWN_NUMBER : value;
    const kept = shown === null || ['number', 'boolean', 'undefined'].includes(typeof shown) ? shown : describe(shown);
    throw new ConnectionHealthConfigError(messages.invalidOption(this.place, path, shown, fix), this.connection, path, kept);
  }

  duration(option: string, value: unknown): void {
    this.that(
      typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= MAX_TIMER_MS,
      option,
      value,
      `Use a number of milliseconds above 0 and at most ${MAX_TIMER_MS} (Node's timer limit, about 24.8 days).`,
    );
  }

  count(option: string, value: unknown, alternative = ''): void {
    this.that(
      typeof value === 'number' && Number.isInteger(value) && value >= 1,
      option,
      value,
      `Use a whole number of at least 1${alternative ? ` ${alternative}` : ''}.`,
    );
  }

  ratio(option: string, value: unknown, max: number): void {
    this.that(
      typeof value === 'number' && value >= 0 && value <= max,
      option,
      value,
      `Use a fraction from 0 to ${max}.`,
    );
  }

  exitCode(option: string, value: unknown): void {
    this.that(
      Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 255,
      option,
      value,
      'Use an integer from 1 to 255: exit code 0 would tell the orchestrator all went well.',
    );
  }

  text(option: string, value: unknown): void {
    this.that(typeof value === 'string' && value.trim() !== '', option, value, 'Use a non-empty string.');
  }

  fn(option: string, value: unknown, required: boolean, shape: string): void {
    this.that(
      typeof value === 'function' || (!required && value === undefined),
      option,
      value,
      `Pass a function ${shape}${required ? '' : ', or leave it out'}.`,
    );
  }

  oneOf(option: string, value: unknown, allowed: readonly unknown[], optional = true): void {
    this.that(
      allowed.includes(value) || (optional && value === undefined),
      option,
      value,
      `Use one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}.`,
    );
  }

  /**
   * Rejects every key of `given` that is not in `known`, listing the known ones and the likely one meant: a
   * misspelled option would otherwise be ignored in silence and its default used. `group` is the option
   * holding the object (e.g. 'heartbeat'), or undefined for the top level, which `owner` then names
   * (e.g. 'a tcp connection').
   */
  knownKeys(group: string | undefined, given: object | undefined, known: readonly string[], owner = group): void {
    if (given === undefined) return;
    const path = (key: string) => (group === undefined ? key : `${group}.${key}`);
    this.that(
      typeof given === 'object' && given !== null && !Array.isArray(given),
      group ?? 'options',
      given,
      `Use an object with some of: ${known.join(', ')}.`,
    );
    for (const [key, value] of Object.entries(given)) {
      const meant = closest(key, known);
      this.that(
        known.includes(key),
        path(key),
        typeof value === 'string' ? UNSHOWN_STRING : value,
        `There is no such option; ${owner} takes ${known.join(', ')}.${meant ? ` Did you mean "${path(meant)}"?` : ''}`,
      );
    }
  }
}

/** The known name a misspelling most likely meant: same letters in another case, or at most 2 edits away. */
function closest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(lower, name.toLowerCase());
    if (distance <= 2 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}
