/**
 * The secret corpus (test/fixtures/secret-corpus.json): real messages that the servers and clients this
 * package runs against printed while a login carried a secret, stored with the secret replaced by a
 * placeholder, so that any secret can be planted back in the form the source wrote it.
 *
 * Placeholders: `{{user}}`, `{{secret}}`, optionally piped through the encodings the source applied, left to
 * right (`{{secret|imap|inspect}}`: IMAP-quoted, then escaped by util.inspect); and the credential blobs a
 * client base64-encodes: `{{sasl}}` (SASL PLAIN, `\0user\0secret`), `{{basic}}` (HTTP Basic, `user:secret`),
 * `{{xoauth2}}` and `{{oauthbearer}}` (the SASL OAuth messages with the secret as the bearer token).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';

/**
 * Where a pattern can find the secret without being told it:
 * - 'pattern': in URL userinfo, after `password=`/`password:`, a STOMP `passcode:` header, an HTTP
 *   `Authorization` header, an IMAP `LOGIN` or `AUTHENTICATE` command (or its continuation in the same text);
 * - 'told': in free text, or base64-encoded with nothing around it that says so: only a scrubber that was
 *   told the secret can remove it;
 * - 'absent': the source never printed the secret (it may print the user).
 */
export type SecretPlace = 'pattern' | 'told' | 'absent';

export interface CorpusEntry {
  id: string;
  /** The server and client, with versions, that printed it. */
  source: string;
  /** How it was captured: what ran, what was recorded. */
  captured: string;
  secretAt: SecretPlace;
  /** What was printed, with placeholders. */
  text: string;
  /**
   * Only for an entry in which a parser cut the password apart (libpq reading an unencoded `@` or `/`):
   * the whole password the client was given. Its text holds no placeholder but what was printed of it.
   */
  password?: string;
}

export interface SecretCorpus {
  about: string;
  capturedAt: string;
  node: string;
  entries: CorpusEntry[];
}

export interface Credentials {
  user: string;
  secret: string;
}

/** The ways a source writes a value: each is what a scrubber must recognise, or a pattern must span. */
export const ENCODINGS = {
  /** encodeURIComponent: a password a user percent-encoded into a URL. */
  url: (value: string) => encodeURIComponent(value),
  /** What the WHATWG URL parser makes of a password in userinfo (new URL().href, fetch): it leaves `%&+!$'` alone. */
  userinfo: (value: string) => {
    const url = new URL('http://u@h');
    url.password = value;
    return url.password;
  },
  /** An IMAP quoted string (RFC 3501): backslash and double quote escaped, as node-imap writes LOGIN. */
  imap: (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"'),
  /**
   * Inside a string printed by util.inspect (node-imap's debug, Node's error properties), in its single-quote
   * form. Last in a chain, inside a '...' literal of the text: renderCorpusText() then prints the whole
   * literal again, with the quotes Node would choose for it.
   */
  inspect: (value: string) => inspect(value).slice(1, -1),
  /** Inside a JSON string. */
  json: (value: string) => JSON.stringify(value).slice(1, -1),
  base64: (value: string) => Buffer.from(value).toString('base64'),
} satisfies Record<string, (value: string) => string>;

export type Encoding = keyof typeof ENCODINGS;

/** The credential blobs clients send base64-encoded, by placeholder name. */
export function credentialBlobs({ user, secret }: Credentials): Record<string, string> {
  const b64 = ENCODINGS.base64;
  return {
    sasl: b64(`\0${user}\0${secret}`),
    basic: b64(`${user}:${secret}`),
    xoauth2: b64(`user=${user}\x01auth=Bearer ${secret}\x01\x01`),
    // As imapflow sends it to a server on 127.0.0.1:143.
    oauthbearer: b64(`n,a=${user},\x01host=127.0.0.1\x01port=143\x01auth=Bearer ${secret}\x01\x01`),
  };
}

const PLACEHOLDER = /\{\{(user|secret|sasl|basic|xoauth2|oauthbearer)((?:\|[a-z0-9]+)*)\}\}/g;

/** The value of one placeholder, e.g. `secret|imap|inspect`. */
export function renderPlaceholder(name: string, encodings: readonly string[], credentials: Credentials): string {
  const blobs = credentialBlobs(credentials);
  let value = name === 'user' ? credentials.user : name === 'secret' ? credentials.secret : blobs[name];
  if (value === undefined) throw new Error(`unknown placeholder {{${name}}}`);
  for (const encoding of encodings) {
    const encode = ENCODINGS[encoding as Encoding];
    if (!encode) throw new Error(`unknown encoding ${encoding} in {{${name}|${encodings.join('|')}}}`);
    value = encode(value);
  }
  return value;
}

/** The placeholders of a text, each once: name and encodings. */
export function placeholdersOf(text: string): Array<{ name: string; encodings: string[] }> {
  const seen = new Map<string, { name: string; encodings: string[] }>();
  for (const match of text.matchAll(PLACEHOLDER)) {
    seen.set(match[0], { name: match[1]!, encodings: match[2]!.split('|').filter(Boolean) });
  }
  return [...seen.values()];
}

/** A single-quoted string literal as util.inspect prints one (the capture's secret held no quote). */
const INSPECTED_LITERAL = /'((?:[^'\\\n]|\\.)*)'/g;

/** The text with the credentials planted. */
export function renderCorpusText(text: string, credentials: Credentials): string {
  // util.inspect chooses its quotes by the whole string: ' unless it holds one, then ", then `. So a literal
  // holding a placeholder that ends in `inspect` is printed again whole, as Node would print it with this
  // secret: its placeholders rendered without that last step, the literal's own escapes undone.
  const requoted = text.replace(INSPECTED_LITERAL, (literal, body: string) => {
    if (!/\{\{[^}]*\|inspect\}\}/.test(body)) return literal;
    const raw = body.replace(/\\(.)/g, '$1').replace(PLACEHOLDER, (placeholder: string) => placeholder.replace(/\|inspect\}\}$/, '}}'));
    return inspect(renderPlain(raw, credentials));
  });
  return renderPlain(requoted, credentials);
}

function renderPlain(text: string, credentials: Credentials): string {
  return text.replace(PLACEHOLDER, (_, name: string, encodings: string) =>
    renderPlaceholder(name, encodings.split('|').filter(Boolean), credentials),
  );
}

/**
 * Every form in which `text` (a corpus entry) carries the secret once planted: what a human could read
 * back. The exact and percent-encoded forms always, plus each encoded form and blob the entry uses.
 */
export function plantedForms(text: string, credentials: Credentials): string[] {
  const forms = new Set([credentials.secret, ENCODINGS.url(credentials.secret)]);
  for (const { name, encodings } of placeholdersOf(text)) {
    if (name !== 'user') forms.add(renderPlaceholder(name, encodings, credentials));
  }
  return [...forms];
}

export const CORPUS_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'fixtures', 'secret-corpus.json');

export function readSecretCorpus(file = CORPUS_FILE): SecretCorpus {
  return JSON.parse(readFileSync(file, 'utf8')) as SecretCorpus;
}
