const MAX_LENGTH = 300;

const patterns: ReadonlyArray<[RegExp, string]> = [
  // scheme://user:password@host -> scheme://***@host (also a bare user@ with no password)
  [/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, '$1***@'],
  // password=..., pwd: ..., "token": "..." and friends, in connection strings, logs and JSON
  [
    /((?:password|passwd|pwd|pass|secret|token|api[-_]?key|authorization|credentials?)["']?\s*[=:]\s*["']?)[^\s"',;&}]+/gi,
    '$1***',
  ],
  // IMAP LOGIN user password / AUTHENTICATE PLAIN <base64> echoed back by a server
  [/\b(LOGIN\s+\S+\s+)\S+/gi, '$1***'],
  [/\b(AUTHENTICATE\s+\S+\s+)\S+/gi, '$1***'],
];

/**
 * Removes credentials from a message that may come straight from a driver. Health bodies and logs show
 * reasons; a driver error can echo a connection string, so every reason passes through here.
 */
export function redactSecrets(text: string): string {
  let result = text;
  for (const [pattern, replacement] of patterns) result = result.replace(pattern, replacement);
  return result.length > MAX_LENGTH ? `${result.slice(0, MAX_LENGTH - 1)}…` : result;
}

/** A short, redacted reason for an unknown thrown value: the error code first, then the message. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const prefix = typeof code === 'string' && !error.message.includes(code) ? `${code}: ` : '';
    return redactSecrets(`${prefix}${error.message || error.name}`);
  }
  return redactSecrets(String(error));
}
