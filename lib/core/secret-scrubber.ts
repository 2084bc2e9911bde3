import { errorText, redactSecrets, shortened } from './redact.js';

/**
 * Shorter values are not scrubbed: removing every "ab" from a message would garble it and hide nothing.
 * Such a secret is still caught where a pattern finds it (a URL's userinfo, password=...).
 */
export const MIN_SECRET_LENGTH = 3;
/**
 * A secret shorter than this is removed only where it stands as a word of its own: a password "admin"
 * must not turn "administrator" into "***istrator". Drivers echo a password between delimiters.
 */
const WHOLE_WORD_BELOW = 8;
/** Generations of a source's secrets kept: the current and the one before, for a late error of an old client. */
const GENERATIONS_KEPT = 2;
/** Scrubbing a reason reads this much of a message at most: the reason keeps 300 characters. */
const MAX_SCRUBBED_REASON = 16_384;
/** A base64 fragment shorter than this occurs in ordinary words by chance. */
const MIN_BASE64_FRAGMENT = 6;
/** A run of base64 text (standard or url-safe alphabet), as it sits in a header, a SASL line or a token. */
const BASE64_RUN = /[A-Za-z0-9+/_-]{4,}={0,2}/g;

/**
 * Removes the secrets the package was configured with from every text that leaves it: reasons, errors,
 * log lines, events, snapshots, metric labels and health bodies. A driver may echo a password in any shape,
 * so each value is removed as written, URL-encoded (component, form and userinfo styles), JSON- and
 * quote-escaped, and inside base64 (where SASL PLAIN, Basic auth and XOAUTH2 put it), whatever its offset;
 * then the shape patterns of redactSecrets() catch what the package was never told. The secrets are held in
 * private fields, so neither util.inspect nor JSON.stringify of the scrubber shows them.
 */
export class SecretScrubber {
  /** The module's own: the `secrets` option. Kept for good. */
  readonly #fixed = new Set<string>();
  /** Per source (a connection), its last generations: a factory may mint a new token for every session. */
  readonly #bySource = new Map<string, ReadonlyArray<ReadonlySet<string>>>();
  #literals?: RegExp;
  #base64Fragments: string[] = [];

  /** Adds values to scrub for good; anything but a string of MIN_SECRET_LENGTH or more is ignored. */
  add(values: Iterable<unknown>): void {
    for (const value of usable(values)) {
      if (this.#fixed.has(value)) continue;
      this.#fixed.add(value);
      this.#literals = undefined;
    }
  }

  /**
   * Sets what `source` holds now. The secrets of its generation before stay scrubbed too, the older ones
   * are dropped: a connection whose factory mints a token per session does not grow the scrubber forever.
   */
  learn(source: string, values: Iterable<unknown>): void {
    const current = new Set(usable(values));
    const generations = this.#bySource.get(source) ?? [];
    const latest = generations[generations.length - 1];
    if (latest && latest.size === current.size && [...current].every((value) => latest.has(value))) return;
    this.#bySource.set(source, [...generations, current].slice(-GENERATIONS_KEPT));
    this.#literals = undefined;
  }

  /** `text` without any known secret nor anything shaped like one. */
  scrub(text: string): string {
    return redactSecrets(this.#scrubKnown(text));
  }

  /** A short, scrubbed reason for an unknown thrown value. */
  describe(error: unknown): string {
    return this.reason(errorText(error));
  }

  /** A reason as snapshots, events and bodies keep it: scrubbed and short. */
  reason(text: string): string {
    return shortened(this.scrub(text.slice(0, MAX_SCRUBBED_REASON)));
  }

  /**
   * A copy of a plain value (object, array, string) with every string value in it scrubbed. Keys stay: they
   * are connection names and field names from the app's code, and dashboards and probes rely on them; a
   * password that happens to be a common word ("test") must not rename a connection.
   */
  scrubDeep<T>(value: T): T {
    if (typeof value === 'string') return this.scrub(value) as T;
    if (Array.isArray(value)) return value.map((item: unknown) => this.scrubDeep(item)) as T;
    if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return value;
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, this.scrubDeep(item)])) as T;
  }

  #secrets(): Set<string> {
    const all = new Set(this.#fixed);
    for (const generations of this.#bySource.values()) for (const generation of generations) for (const value of generation) all.add(value);
    return all;
  }

  #scrubKnown(text: string): string {
    if (!this.#literals) this.#compile();
    if (!this.#literals) return text;
    // Base64 first: a literal removed from inside a base64 run would leave the rest of that run undetectable.
    const fragments = this.#base64Fragments;
    const withoutBase64 = text.replace(BASE64_RUN, (run) => (fragments.some((fragment) => run.includes(fragment)) ? '***' : run));
    return withoutBase64.replace(this.#literals!, '***');
  }

  #compile(): void {
    const literals = new Set<string>();
    const fragments = new Set<string>();
    for (const secret of this.#secrets()) {
      for (const form of writtenForms(secret)) if (form.length >= MIN_SECRET_LENGTH) literals.add(form);
      for (const fragment of base64Fragments(secret)) fragments.add(fragment);
    }
    this.#base64Fragments = [...fragments];
    if (literals.size === 0) return;
    // Longest first, so a secret that contains another is removed whole; a short one only as a word.
    const alternatives = [...literals]
      .sort((a, b) => b.length - a.length)
      .map((form) => (form.length < WHOLE_WORD_BELOW ? `(?<![\\p{L}\\p{N}])${escapeRegExp(form)}(?![\\p{L}\\p{N}])` : escapeRegExp(form)));
    this.#literals = new RegExp(alternatives.join('|'), 'gu');
  }

  /** What util.inspect shows: how many secrets, never which. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SecretScrubber { ${this.#secrets().size} secret(s) }`;
  }

  toJSON(): object {
    return { secrets: this.#secrets().size };
  }
}

/** The strings of MIN_SECRET_LENGTH or more among `values`; a number (a password from YAML) as its digits. */
function* usable(values: Iterable<unknown>): Generator<string> {
  for (const value of values) {
    const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
    if (typeof text === 'string' && text.length >= MIN_SECRET_LENGTH) yield text;
  }
}

/** The ways a driver, a URL or a log line may write `secret`. */
function writtenForms(secret: string): Set<string> {
  const forms = new Set([secret, secret.normalize('NFC'), secret.normalize('NFD')]);
  const component = encodeURIComponent(secret);
  const userinfo = new URL('x://h');
  userinfo.password = secret;
  for (const encoded of [component, encodeURI(secret), userinfo.password, new URLSearchParams({ s: secret }).toString().slice(2)]) {
    forms.add(encoded);
    forms.add(encoded.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase()));
  }
  forms.add(JSON.stringify(secret).slice(1, -1));
  forms.add(secret.replace(/(["'\\])/g, '\\$1'));
  // util.inspect: backslashes doubled, and the quote it chose escaped (' when the string holds both others).
  forms.add(secret.replace(/(['\\])/g, '\\$1'));
  forms.add(secret.replaceAll('\\', '\\\\'));
  forms.add(secret.replaceAll("'", "''"));
  // UTF-8 read as Latin-1 by a client that got the encoding wrong.
  forms.add(Buffer.from(secret, 'utf8').toString('latin1'));
  return forms;
}

/**
 * The parts of the base64 of any text holding `secret` that depend on the secret's bytes alone, at each of
 * the three offsets the secret may start at within a 3-byte group; in the standard and url-safe alphabets.
 */
function base64Fragments(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const fragments: string[] = [];
  for (let offset = 0; offset < 3; offset += 1) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    // Characters wholly inside the secret's bits: the first starts at bit 8*offset, the last ends before the secret does.
    const first = Math.ceil((8 * offset) / 6);
    const last = Math.floor((8 * (offset + bytes.length)) / 6); // exclusive
    const fragment = encoded.slice(first, last);
    if (fragment.length < MIN_BASE64_FRAGMENT) continue;
    fragments.push(fragment, fragment.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return fragments;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
