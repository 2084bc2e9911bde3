import { type OptionChecker, optionNames } from '../core/option-checker.js';
import { UNSHOWN_STRING } from '../core/messages.js';
import type { ThrottleOptions } from './change-throttle.js';

export interface WebhookPublisherOptions {
  /**
   * Where to POST, http or https. A Slack or Teams webhook URL's path is its secret: logs and errors show
   * only the origin, and the whole URL is scrubbed from every output.
   */
  url: string;
  /**
   * Key of the HMAC-SHA256 signature sent in `x-connection-health-signature` (over the timestamp, a dot and
   * the body), with the timestamp in `x-connection-health-timestamp`. Default none: unsigned.
   */
  secret?: string;
  /** Names the publisher in log lines. Default 'webhook'. */
  name?: string;
  /** Deadline of one attempt, the answer's body included. Default 5 000. */
  timeoutMs?: number;
  /** Attempts after the first one, on a network error, a timeout, a 5xx, 408 or 429; never on another 4xx. Default 3. */
  retries?: number;
  /** Delay before the first retry, doubled for each next one, with jitter. Default 1 000. */
  retryDelayMs?: number;
  /** Cap of the retry delay, and of a 429's Retry-After honoured. Default 30 000. */
  maxRetryDelayMs?: number;
  /** Per connection: transitions sent one by one per window, the rest in one summary at its end; false sends every one. Default { windowMs: 60 000, maxPerWindow: 3 }. */
  throttle?: ThrottleOptions | false;
  /** Messages waiting to be sent; beyond it the oldest is dropped, and the next message says so. Default 100. */
  maxQueue?: number;
  /**
   * Whether the (scrubbed) reason of a change goes to the receiver, in `reason` and in `text`. False keeps
   * error texts of your dependencies (host names, addresses) away from a third party such as Slack. Default true.
   */
  reasons?: boolean;
}

export const WEBHOOK_OPTIONS = optionNames<WebhookPublisherOptions>({
  url: true,
  secret: true,
  name: true,
  timeoutMs: true,
  retries: true,
  retryDelayMs: true,
  maxRetryDelayMs: true,
  throttle: true,
  maxQueue: true,
  reasons: true,
});
export const THROTTLE_OPTIONS = optionNames<ThrottleOptions>({ windowMs: true, maxPerWindow: true });

/** A URL as a message may show it: its origin alone, since a webhook URL's path is its secret. */
export function shownUrl(url: unknown): unknown {
  if (typeof url !== 'string') return url;
  try {
    const { protocol, host } = new URL(url);
    return `${protocol}//${host}`;
  } catch {
    return UNSHOWN_STRING;
  }
}

/** Checks a WebhookPublisher's options; `check` names the place and the option path (`publishers[0].`). */
export function checkWebhookOptions(check: OptionChecker, options: WebhookPublisherOptions): void {
  check.knownKeys(undefined, options, WEBHOOK_OPTIONS, 'a WebhookPublisher');
  const { url, secret, name, timeoutMs, retries, retryDelayMs, maxRetryDelayMs, throttle, maxQueue, reasons } = options;
  let protocol: string | undefined;
  try {
    protocol = typeof url === 'string' ? new URL(url).protocol : undefined;
  } catch {
    protocol = undefined;
  }
  check.that(
    protocol === 'http:' || protocol === 'https:',
    'url',
    shownUrl(url),
    "Use an absolute http or https URL, e.g. process.env.SLACK_WEBHOOK_URL ('https://hooks.slack.com/services/...').",
  );
  check.that(
    secret === undefined || (typeof secret === 'string' && secret.length >= 16),
    'secret',
    secret,
    'Use a string of at least 16 characters (e.g. 32 random bytes as hex), or leave it out to send unsigned.',
  );
  if (name !== undefined) check.text('name', name);
  if (timeoutMs !== undefined) check.duration('timeoutMs', timeoutMs);
  check.that(
    retries === undefined || (Number.isInteger(retries) && retries >= 0 && retries <= 20),
    'retries',
    retries,
    'Use a whole number from 0 (no retry) to 20.',
  );
  if (retryDelayMs !== undefined) check.duration('retryDelayMs', retryDelayMs);
  if (maxRetryDelayMs !== undefined) check.duration('maxRetryDelayMs', maxRetryDelayMs);
  check.that(
    (maxRetryDelayMs ?? 30_000) >= (retryDelayMs ?? 1_000),
    'maxRetryDelayMs',
    maxRetryDelayMs,
    `Use at least retryDelayMs (${retryDelayMs ?? 1_000}): it caps the delay that starts there.`,
  );
  if (throttle !== undefined && throttle !== false) {
    check.knownKeys('throttle', throttle, THROTTLE_OPTIONS);
    if (throttle.windowMs !== undefined) check.duration('throttle.windowMs', throttle.windowMs);
    if (throttle.maxPerWindow !== undefined) check.count('throttle.maxPerWindow', throttle.maxPerWindow);
  }
  check.that(
    maxQueue === undefined || (Number.isInteger(maxQueue) && maxQueue >= 1 && maxQueue <= 10_000),
    'maxQueue',
    maxQueue,
    'Use a whole number from 1 to 10000.',
  );
  check.oneOf('reasons', reasons, [true, false]);
}
