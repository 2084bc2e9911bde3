#!/usr/bin/env node
/**
 * connection-health-probe: a HEALTHCHECK command for images without curl or wget. It needs nothing but Node.
 * The usage text below says what it does; the README's "Images without curl" repeats it.
 *
 * What it prints is one line built from the status code and a few short plain words of the answer, never the
 * body itself: a health endpoint's body may hold driver messages, and whatever the probe prints lands in
 * `docker inspect` and in the logs of whoever runs it, where a hostile body could also smuggle control
 * characters into a terminal.
 */
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';

const USAGE = 'usage: connection-health-probe [url] [--timeout ms]';
const HELP = `${USAGE}

GETs a health URL once and prints one line: "healthy: 200 ok in 3 ms", "unhealthy: 503 error (db: down) in 2 ms"
or "unreachable: <why>". Redirects are not followed. Nothing but Node is needed.

  url            http:// or https:// URL to probe (default http://127.0.0.1:$PORT/health, PORT defaulting to 3000)
  --timeout ms   give up after this many milliseconds (default 3000); --timeout=ms works too
  -h, --help     print this help and exit

exit codes:
  0  healthy: the answer was a 2xx
  1  unhealthy or unreachable: any other answer (a 3xx too), no answer within the timeout, or no connection
  2  usage: a bad command line or PORT; nothing was probed
`;

/** setTimeout holds at most this (about 24.8 days); a longer delay would fire at once, with a warning. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** Enough for any Terminus body; the rest of a larger answer is read but not kept. */
const MAX_BODY_CHARS = 64 * 1024;
/** How many connections that are not up the line names; the others are counted. */
const MAX_NAMED = 5;

class UsageError extends Error {}

type Command = { help: true } | { help: false; url: URL; timeoutMs: number };

function parse(args: readonly string[]): Command {
  let url: string | undefined;
  let timeout: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '-h' || arg === '--help') return { help: true };
    if (arg === '--timeout') {
      timeout = args[++i];
      if (timeout === undefined) throw new UsageError('--timeout needs a value in milliseconds');
    } else if (arg.startsWith('--timeout=')) {
      timeout = arg.slice('--timeout='.length);
    } else if (arg.startsWith('-')) {
      throw new UsageError(`unknown option ${JSON.stringify(arg.split('=')[0])}`);
    } else if (url !== undefined) {
      throw new UsageError('give one URL only');
    } else {
      url = arg;
    }
  }
  return { help: false, url: parseUrl(url), timeoutMs: parseTimeout(timeout) };
}

function parseUrl(given: string | undefined): URL {
  if (given === undefined) {
    const port = process.env.PORT ?? '3000';
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65_535) throw new UsageError('PORT is not a port number (give a URL, or fix PORT)');
    return new URL(`http://127.0.0.1:${port}/health`);
  }
  // The URL itself is not repeated: it may carry a password.
  if (!/^https?:\/\//i.test(given)) throw new UsageError('the URL must start with http:// or https://');
  try {
    return new URL(given);
  } catch {
    throw new UsageError('the URL is not valid');
  }
}

function parseTimeout(given: string | undefined): number {
  if (given === undefined) return 3_000;
  const ms = /^\d+$/.test(given) ? Number(given) : NaN;
  if (!(ms >= 1 && ms <= MAX_TIMEOUT_MS)) throw new UsageError(`--timeout takes a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}`);
  return ms;
}

/** A status word or connection name a body may show: short, and nothing a terminal could act on. */
function plain(value: unknown, maxLength: number): value is string {
  return typeof value === 'string' && value.length <= maxLength && /^[\w.:-]+$/.test(value);
}

/** "error (db: down, mail: degraded)" from a Terminus-shaped body; only short plain words, and '' for anything else. */
function summary(body: string): string {
  let parsed: { status?: unknown; details?: unknown };
  try {
    parsed = JSON.parse(body) ?? {};
  } catch {
    return '';
  }
  type Entry = { status?: unknown } | null;
  const details = (typeof parsed.details === 'object' && parsed.details !== null ? parsed.details : {}) as Record<string, Entry>;
  const notUp = Object.entries(details).filter(([, entry]) => entry?.status !== 'up');
  const named = notUp
    .filter(([name, entry]) => plain(name, 64) && plain(entry?.status, 20))
    .slice(0, MAX_NAMED)
    .map(([name, entry]) => `${name}: ${entry?.status}`);
  if (named.length < notUp.length) named.push(`${notUp.length - named.length} more`);
  return [plain(parsed.status, 20) ? parsed.status : '', named.length ? `(${named.join(', ')})` : ''].filter(Boolean).join(' ');
}

function finish(code: 0 | 1, words: readonly (string | number)[]): void {
  // summary() passes plain words only and Node's own error messages hold nothing of the server's; turning every
  // control character into a space is a second lock on the one line.
  process.stdout.write(`${words.filter((word) => word !== '').join(' ').replace(/[\p{Cc}\u2028\u2029\s]+/gu, ' ').trim()}\n`);
  process.exitCode = code;
}

function probe(url: URL, timeoutMs: number): void {
  const startedAt = performance.now();
  const get = url.protocol === 'https:' ? httpsGet : httpGet;
  // Node's http client never follows a redirect on its own, so a 3xx stays the answer and its Location unvisited.
  const request = get(url, { timeout: timeoutMs, headers: { connection: 'close', accept: 'application/json' } }, (response) => {
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      if (body.length < MAX_BODY_CHARS) body += chunk;
    });
    response.on('end', () => {
      const status = response.statusCode ?? 0;
      const healthy = status >= 200 && status < 300;
      const why = status >= 300 && status < 400 ? '(redirect not followed)' : summary(body);
      finish(healthy ? 0 : 1, [healthy ? 'healthy:' : 'unhealthy:', status, why, `in ${Math.round(performance.now() - startedAt)} ms`]);
    });
  });
  // The socket timeout only measures idleness: an overall deadline keeps a trickling server from holding on.
  const giveUp = () => request.destroy(new Error(`no answer within ${timeoutMs} ms`));
  const deadline = setTimeout(giveUp, timeoutMs);
  request.on('timeout', giveUp);
  // A host with several addresses (localhost: ::1 and 127.0.0.1 in most containers) fails with an AggregateError
  // whose own message is empty.
  request.on('error', (error) =>
    finish(1, ['unreachable:', error instanceof AggregateError ? error.errors.map((each: Error) => each.message).join(', ') : error.message]),
  );
  request.on('close', () => clearTimeout(deadline));
}

try {
  const command = parse(process.argv.slice(2));
  if (command.help) process.stdout.write(HELP);
  else probe(command.url, command.timeoutMs);
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`connection-health-probe: ${error.message}; ${USAGE} (--help for more)\n`);
  process.exitCode = 2;
}
