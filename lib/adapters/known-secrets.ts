/**
 * Where each kind finds the credentials it was configured with (ConnectionAdapter.knownSecrets), so that
 * every output of the package can scrub them. Values that are not strings (a pg password function, a key
 * Buffer) are skipped: a function's result is never seen, a Buffer is never printed as it is.
 */

/**
 * Keys whose value is a credential, in driver options, TLS options and client configs, wherever the word
 * sits in the name: mssql's `authentication.options.clientSecret`, Oracle's `walletPassword`, MongoDB's
 * `tlsCertificateKeyFilePassword`, Redis' `sentinelPassword`, `AWS_SESSION_TOKEN`, a TLS `key`.
 */
const SECRET_KEYS = /pass|secret|token|credential|xoauth|^(?:key|privateKey|private_key|apiKey|api_key|pfx|sig)$/i;
/** Option names that hold the word but no secret. */
const NOT_SECRET_KEYS = /^(?:passive|bypass\w*|passReqToCallback|tokenType|token_type)$/i;
/** Keys whose value is a URL or connection string that may hold a password. */
const URL_KEYS = /^(?:url|uri|dsn|proxy|connectionString|connectString|brokerURL)$/i;
/** How deep into nested options credentials are looked for (replication.slaves[0].authentication.options.password). */
const MAX_DEPTH = 6;
/** Header names that carry credentials (STOMP CONNECT headers, HTTP): passcode, Authorization, X-Api-Key, ... */
const SECRET_HEADER = /pass|secret|token|auth|key|credential|cookie/i;

/** Whether a header carries a credential; `login` does not (a user name), though it says who logs in. */
export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER.test(name);
}

/** The password of a URL or connection string, as written and decoded; none for one without. */
export function urlSecrets(url: unknown): string[] {
  if (typeof url !== 'string') return [];
  // key=value connection strings (Password=...; or password=... ) as well as URLs.
  const fromPairs = [...url.matchAll(/(?:^|[\s;&?])(?:password|pwd)\s*=\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s;&]+)/gi)].map(([, value]) =>
    /^['"]/.test(value) ? value.slice(1, -1) : value,
  );
  // The password as a driver may split it: up to the last '@' of the whole string ('@' and '/' in it
  // included), and as a URL parser does, up to the last '@' before the path.
  const whole = /^[a-z][a-z0-9+.-]*:\/\/([^:@/]*):(.*)@[^@]*$/is.exec(url)?.[2];
  const parsed = /^[a-z][a-z0-9+.-]*:\/\/([^:@/]*):([^/?#]*)@[^@/?#]*(?:[/?#]|$)/is.exec(url)?.[2];
  const fromUrl = [whole, parsed].flatMap((password) => (password === undefined ? [] : [password, safeDecode(password)]));
  return [...fromPairs, ...fromUrl];
}

/**
 * Credentials in an options object of a driver, a client or TLS: values of password-like keys, passwords
 * of URL-like keys, and the same inside nested objects (replication, extra, ssl, tls, auth).
 */
export function optionSecrets(options: unknown, depth = MAX_DEPTH): string[] {
  if (typeof options !== 'object' || options === null || depth < 0) return [];
  const found: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (typeof value === 'string' || typeof value === 'number') {
      if (SECRET_KEYS.test(key) && !NOT_SECRET_KEYS.test(key)) found.push(String(value));
      else if (URL_KEYS.test(key)) found.push(...urlSecrets(value));
    } else if (Array.isArray(value)) {
      for (const item of value) found.push(...optionSecrets(item, depth - 1));
    } else if (typeof value === 'object' && value !== null && !Buffer.isBuffer(value)) {
      found.push(...optionSecrets(value, depth - 1));
    }
  }
  return found;
}

/** Values of headers that carry credentials: passcode, Authorization, tokens, API keys, cookies. */
export function headerSecrets(headers: Readonly<Record<string, string>> | undefined): string[] {
  return Object.entries(headers ?? {}).flatMap(([name, value]) => (isSecretHeader(name) ? [value, ...authorizationSecrets(value)] : []));
}

/** "Bearer abc" → also "abc", "Basic dXNlcjpwdw==" → also its decoded user:password. */
function authorizationSecrets(value: string): string[] {
  const [scheme, credentials] = value.split(/\s+/, 2);
  if (!credentials) return [];
  if (/^basic$/i.test(scheme)) {
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    return [credentials, decoded, decoded.slice(decoded.indexOf(':') + 1)];
  }
  return [credentials];
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
