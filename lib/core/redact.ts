/** Longest reason a snapshot keeps: a driver's message can be a whole page. */
const MAX_REASON_LENGTH = 300;

/** Names under which a value is a secret, in connection strings, STOMP frames, JSON and logs. */
const SECRET_KEY =
  '(?:password|passwd|pwd|passcode|passphrase|pass|client[-_]?secret|secret|access[-_]?token|refresh[-_]?token|' +
  'token|api[-_]?key|credentials?|private[-_]?key)';
/**
 * A value: double-, single- or back-quoted (with escapes, SQL's doubled quote too; util.inspect back-quotes a
 * string that holds both other quotes), escaped-quoted, or bare.
 */
const VALUE = String.raw`(?:"(?:[^"\\\r\n]|\\.)*"|'(?:[^'\\\r\n]|\\.|'')*'|\`(?:[^\`\\\r\n]|\\.)*\`|\\"(?:[^"\\\r\n]|\\[^"])*\\"|[^\s"',;&}]+)`;
const AUTH_SCHEMES = 'Bearer|Basic|Digest|Negotiate|NTLM|Token|Hawk|AWS4-HMAC-SHA256';

/** Keeps a quoted value's quotes, so JSON stays JSON. */
const hideValue = (value: string): string => {
  const quote = /^(\\?["'`])/.exec(value)?.[1];
  return quote ? `${quote}***${quote}` : '***';
};

/** An authorization header's value without its credentials: quotes and scheme stay. */
const hideCredentials = (value: string): string => {
  const quote = /^["']/.test(value) ? value[0] : '';
  const scheme = new RegExp(`^(?:${AUTH_SCHEMES})(?=\\s)`, 'i').exec(value.slice(quote.length))?.[0];
  return `${quote}${scheme ? `${scheme} ` : ''}***${quote && value.endsWith(quote) && value.length > 1 ? quote : ''}`;
};

const patterns: ReadonlyArray<[RegExp, (match: string, ...groups: string[]) => string]> = [
  // PEM private keys, whole.
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g, () => '***'],
  // scheme://user:password@host, the password holding anything up to the line's last '@' (an unescaped
  // '@', '/' or space included) unless what follows the colon is a port; and scheme://user@host.
  [
    /([a-z][a-z0-9+.-]*:\/\/)(?:[^\s:/@]*:(?!\d+(?:[/?#\s]|$))[^\r\n]*|\S*)@/gi,
    (_match, scheme) => `${scheme}***@`,
  ],
  // Authorization: <scheme> <credentials>: the scheme stays, the rest of the value goes (of the line, unquoted).
  [
    /((?:proxy-)?authorization\\?["']?\s*[=:]\s*)("(?:[^"\\\r\n]|\\.)*"?|'[^'\r\n]*'?|[^\r\n]*)/gi,
    (_match, key, value) => `${key}${hideCredentials(value)}`,
  ],
  // A bare "Bearer <token>" (XOAUTH2's auth=Bearer, a logged header value) or "Basic <base64>".
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/-]{8,}=*/g, (_match, scheme) => `${scheme} ***`],
  [/\b(Digest)\s+(?:username|realm|nonce|response|uri)=[^\r\n]*/gi, (_match, scheme) => `${scheme} ***`],
  // A header line (STOMP's passcode, a YAML or HTTP-style "Password: ..."): its value runs to the end of the line.
  [/^(passcode|password|passwd|passphrase)(:[ \t]*)[^\r\n]+/gim, (_match, key, colon) => `${key}${colon}***`],
  // password=..., passcode:..., "token": "...": the value, quoted with spaces or bare.
  [
    new RegExp(String.raw`((?<![a-z])${SECRET_KEY}\\?["']?\s*[=:]\s*)(${VALUE})`, 'gi'),
    (_match, key, value) => `${key}${hideValue(value)}`,
  ],
  // A JSON Web Token anywhere.
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, () => '***'],
  // IMAP LOGIN <user> <password> and AUTHENTICATE <mechanism> <initial response>, echoed by a server or a
  // debug log: the user (atom or quoted string) stays, the rest of the line goes. Upper case, as clients
  // send them, so that prose ("login failed for ...") is left alone; one line, so that "AUTHENTICATE LOGIN"
  // does not take the server's next challenge for a user.
  [/(\bLOGIN[ \t]+(?:"(?:[^"\\\r\n]|\\.)*"|[^\s"]+)[ \t]+)[^\r\n]+/g, (_match, head) => `${head}***`],
  [/(\bAUTHENTICATE[ \t]+[A-Za-z0-9-]+[ \t]+)[^\r\n]+/g, (_match, head) => `${head}***`],
  // What the client answers to the server's "+" challenges after AUTHENTICATE: lines of base64 alone.
  [/\bAUTHENTICATE[ \t]+[A-Za-z0-9-]+[\s\S]*/g, (session) => session.replace(/^[A-Za-z0-9+/]{4,}={0,2}(?=\r?$)/gm, '***')],
];

/**
 * Removes credentials by their shape, from a message that may come straight from a driver: connection
 * strings, key=value pairs, authorization headers, tokens, echoed IMAP logins. The secrets the package was
 * given are removed whatever their shape by SecretScrubber, which applies these patterns too.
 */
export function redactSecrets(text: string): string {
  let result = text;
  for (const [pattern, replace] of patterns) result = result.replace(pattern, replace as (match: string) => string);
  return result;
}

/** A reason short enough for a snapshot, a health body and a log line. */
export function shortened(text: string): string {
  return text.length > MAX_REASON_LENGTH ? `${text.slice(0, MAX_REASON_LENGTH - 1)}…` : text;
}

/** An unknown thrown value as text: the error code first (when the message lacks it), then the message. */
export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const prefix = typeof code === 'string' && !error.message.includes(code) ? `${code}: ` : '';
    return `${prefix}${error.message || error.name}`;
  }
  return String(error);
}

/** A short, redacted reason for an unknown thrown value. */
export function describeError(error: unknown): string {
  return shortened(redactSecrets(errorText(error)));
}
