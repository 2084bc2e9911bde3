/** Longest reason a snapshot keeps: a driver's message can be a whole page. */
const MAX_REASON_LENGTH = 300;

/**
 * Words that end a key name that holds a secret, whatever comes before them: `password`, `PGPASSWORD`,
 * `dbPassword`, `client_secret`, `secretAccessKey`, `x-api-key`, `refresh_token`, `passcode`. The word
 * must end the name, so a connection named "passport-db" or a "tokenizer" is left alone.
 */
const SECRET_WORD =
  '(?:pass(?:word|wd|code|phrase)?|pwd|secret(?:[-_]?(?:access[-_]?)?key)?|token|api[-_]?key|credentials?|private[-_]?key|cookie)';
/**
 * A key ending in a secret word, starting where a name starts. Its length is bounded, as every repetition
 * in these patterns is: a message is text from a driver or a server, and an unbounded pattern can take
 * seconds on a hostile or merely long one.
 */
const SECRET_KEY = String.raw`(?<![\w-])[\w-]{0,40}?${SECRET_WORD}s?(?![\w-])`;
/**
 * A value: double-, single- or back-quoted (with escapes, SQL's doubled quote too; util.inspect back-quotes a
 * string that holds both other quotes), escaped-quoted, or bare.
 */
const VALUE = String.raw`(?:"(?:[^"\\\r\n]|\\.){0,1024}"|'(?:[^'\\\r\n]|\\.|''){0,1024}'|\`(?:[^\`\\\r\n]|\\.){0,1024}\`|\\"(?:[^"\\\r\n]|\\[^"]){0,1024}\\"|[^\s"',;&}]{1,1024})`;
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
  // scheme://user:password@host, the password holding anything but a space up to the last '@' ('@', ':',
  // '/' and '%' included) unless what follows the colon is a port; and scheme://user@host. A scheme starts
  // where a word starts, so a long run of letters is read once.
  [
    /((?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,30}:\/\/)(?:[^\s:/@]{0,256}:(?!\d+(?:[/?#\s]|$))\S{0,256}|[^\s:/@]{1,256})@/gi,
    (_match, scheme) => `${scheme}***@`,
  ],
  // Authorization: <scheme> <credentials>: the scheme stays, the rest of the value goes (of the line, unquoted).
  [
    /((?:proxy-)?authorization\\?["']?\s*[=:]\s*)("(?:[^"\\\r\n]|\\.){0,4096}"?|'[^'\r\n]{0,4096}'?|[^\r\n]{0,4096})/gi,
    (_match, key, value) => `${key}${hideCredentials(value)}`,
  ],
  // Cookie and Set-Cookie headers: the whole value.
  [/((?:set-)?cookie\s*:\s*)[^\r\n]{1,4096}/gi, (_match, key) => `${key}***`],
  // A bare "Bearer <token>" (XOAUTH2's auth=Bearer, a logged header value) or "Basic <base64>".
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/-]{8,4096}=*/g, (_match, scheme) => `${scheme} ***`],
  [/\b(Digest)\s+(?:username|realm|nonce|response|uri)=[^\r\n]{0,4096}/gi, (_match, scheme) => `${scheme} ***`],
  // A header line (STOMP's passcode, a YAML or HTTP-style "Password: ..."): its value runs to the end of the line.
  [/^(passcode|password|passwd|passphrase)(:[ \t]*)[^\r\n]{1,4096}/gim, (_match, key, colon) => `${key}${colon}***`],
  // password=..., passcode:..., "dbPassword": "...", password%3D...: the value, quoted with spaces or bare.
  [
    new RegExp(String.raw`(${SECRET_KEY}\\?["']?\s*(?:[=:]|%3D)\s*)(${VALUE})`, 'gi'),
    (_match, key, value) => `${key}${hideValue(value)}`,
  ],
  // --password x, --api-key=x on a command line that a log echoes.
  [/(--?(?:password|passwd|pass|passphrase|token|secret|api-key)(?:=|\s+))[^\s"']{1,1024}/gi, (_match, flag) => `${flag}***`],
  // A shared access signature's sig=, in a URL's query.
  [/([?&]sig=)[^&\s"']{1,1024}/gi, (_match, key) => `${key}***`],
  // A JSON Web Token, starting where a token starts.
  [/(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,4096}\.[A-Za-z0-9_-]{5,4096}\.[A-Za-z0-9_-]{0,4096}/g, () => '***'],
  // IMAP LOGIN <user> <password>, and AUTHENTICATE (IMAP) or AUTH (SMTP, POP3) <mechanism> <initial
  // response), echoed by a server or a debug log: the user (atom or quoted string) stays, the rest of the
  // line goes. In upper case as clients send them, or in any case after a tag ("a1 login ..."), so that
  // prose ("login failed for ...") is left alone. On one line, so that "AUTHENTICATE LOGIN" does not take
  // the server's next challenge for a user.
  [/(\b(?:LOGIN|[A-Za-z]{0,8}\d{1,8}[ \t]+login)[ \t]+(?:"(?:[^"\\\r\n]|\\.){0,1024}"|[^\s"]{1,1024})[ \t]+)[^\r\n]{1,4096}/g, (_match, head) => `${head}***`],
  [/(\bAUTH(?:ENTICATE)?[ \t]+[A-Za-z0-9-]{1,40}[ \t]+)[^\r\n]{1,4096}/g, (_match, head) => `${head}***`],
  // What the client answers to the server's "+" challenges after AUTHENTICATE (no initial response, or
  // AUTH=LOGIN's user and password): lines of base64 alone.
  [
    /\bAUTH(?:ENTICATE)?[ \t]+[A-Za-z0-9-]{1,40}[ \t]*\r?\n[\s\S]{0,16384}/g,
    (session) => session.replace(/^[A-Za-z0-9+/]{4,4096}={0,2}(?=\r?$)/gm, '***'),
  ],
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
  // Total: a value String() cannot convert (a null-prototype object), or a throwing message getter, gives its tag.
  try {
    if (error instanceof Error) {
      const code = (error as { code?: unknown }).code;
      const prefix = typeof code === 'string' && !error.message.includes(code) ? `${code}: ` : '';
      return `${prefix}${error.message || error.name}`;
    }
    return String(error);
  } catch {
    return Object.prototype.toString.call(error);
  }
}

/** String(value), total: a value String() cannot convert gives its tag, `[object Object]`. */
export function textOf(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** A short, redacted reason for an unknown thrown value. */
export function describeError(error: unknown): string {
  return shortened(redactSecrets(errorText(error).slice(0, 16_384)));
}
