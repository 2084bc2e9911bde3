import { Logger, type LoggerService } from '@nestjs/common';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { onAbort } from '../core/abortable.js';
import { backoffDelay } from '../core/backoff.js';
import { messages } from '../core/messages.js';
import type { OptionChecker } from '../core/option-checker.js';
import { errorText } from '../core/redact.js';
import { ChangeThrottle } from './change-throttle.js';
import { changeText } from './change-text.js';
import type { ConnectionChange, ConnectionChangeSummary } from './connection-change.js';
import type { ConnectionHealthPublisher, PublishContext } from './connection-health-publisher.interface.js';
import { ATTACH_PUBLISHER, CHECK_PUBLISHER, type PublisherEnvironment } from './publisher-internals.js';
import { checkWebhookOptions, shownUrl, type WebhookPublisherOptions } from './webhook-publisher.options.js';

export const SIGNATURE_HEADER = 'x-connection-health-signature';
export const TIMESTAMP_HEADER = 'x-connection-health-timestamp';

/**
 * The JSON body of one POST: the change (or summary), its time as ISO text, and a `text` that Slack and Teams
 * show (with `&`, `<` and `>` escaped, so that a reason cannot ping `<!channel>` or hide a link). Without
 * `reason` when the option `reasons` is false.
 */
export type WebhookBody = (Omit<ConnectionChange, 'at' | 'reason'> | Omit<ConnectionChangeSummary, 'at' | 'reason'>) & {
  readonly reason?: string;
  readonly text: string;
  readonly at: string;
  /** Older messages dropped from the full queue before this one. */
  readonly dropped?: number;
};

/** `answered`: the receiver gave an HTTP status (it is there), rather than a refused connection or silence. */
type Attempt = { ok: true } | { ok: false; retry: boolean; answered: boolean; why: string; retryAfterMs?: number };

/**
 * An attempt's deadline once the flush began: a receiver that does not answer (egress blackholed in a CI)
 * costs a shutdown this, not its whole flush bound, while a slow one (a cold start) still gets to answer;
 * and under a test framework's 5 s hook timeout.
 */
const FLUSH_ATTEMPT_MS = 2_500;
/** The longest wait before a retry once the flush began, whatever the backoff or a Retry-After says: the bound is near. */
const FLUSH_RETRY_WAIT_MS = 500;

/**
 * POSTs a small JSON per transition to a webhook (Slack, Teams, an own receiver), signed with HMAC-SHA256
 * when a secret is given. One message at a time, in order, each attempt under its deadline, retried with
 * backoff on what may pass (network error, timeout, 5xx, 408, 429); per connection throttled so that a
 * flapping link yields a summary a window; a bounded queue that drops the oldest. Nothing of it runs on a
 * monitor's path: publish() only queues.
 */
export class WebhookPublisher implements ConnectionHealthPublisher {
  readonly name: string;
  readonly #options: WebhookPublisherOptions;
  readonly #origin: string;
  readonly #throttle?: ChangeThrottle;
  readonly #queue: WebhookBody[] = [];
  readonly #idleWaiters: Array<() => void> = [];
  #logger: LoggerService = new Logger('ConnectionHealth');
  #signal?: AbortSignal;
  #unwatch?: () => void;
  #summaryTimer?: NodeJS.Timeout;
  #sending = false;
  #dropped = 0;
  /**
   * From flush() on: attempts get FLUSH_ATTEMPT_MS, and a receiver that is not there (refused, silent) ends
   * the flush at its first failure; one that answers 5xx, 408 or 429 is retried until the flush bound.
   */
  #flushing = false;
  /** Ends a retry's backoff early, when the flush begins. */
  #wake?: () => void;
  /** Shortens the attempt in flight to FLUSH_ATTEMPT_MS, when the flush begins. */
  #hurry?: () => void;

  constructor(options: WebhookPublisherOptions) {
    this.#options = { ...options };
    this.name = options.name ?? 'webhook';
    this.#origin = String(shownUrl(options.url));
    if (options.throttle !== false) this.#throttle = new ChangeThrottle(options.throttle);
  }

  publish(change: ConnectionChange, { signal }: PublishContext): void {
    if (!this.#watch(signal)) return;
    if (this.#throttle && !this.#throttle.offer(change, Date.now())) {
      this.#armSummaries();
      return;
    }
    this.#enqueue(change);
  }

  /** Sends the held summaries now and resolves once the queue is empty, or the shutdown's signal aborted. */
  flush({ signal }: PublishContext): Promise<void> {
    if (!this.#watch(signal)) return Promise.resolve();
    this.#flushing = true;
    // What waits is delivered now: a retry's backoff ends, and the attempt in flight gets the flush's deadline.
    this.#wake?.();
    this.#hurry?.();
    for (const summary of this.#throttle?.due(Date.now(), true) ?? []) this.#enqueue(summary);
    this.#clearSummaryTimer();
    if (!this.#sending) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  [CHECK_PUBLISHER](check: OptionChecker): void {
    checkWebhookOptions(check, this.#options);
  }

  /** The URL (its path is the secret of a Slack or Teams webhook) and the HMAC key are scrubbed from every output. */
  [ATTACH_PUBLISHER]({ logger, scrubber }: PublisherEnvironment): void {
    this.#logger = logger;
    scrubber.add([this.#options.secret, ...urlSecrets(this.#options.url)]);
  }

  /** A util.inspect of the publisher (a log of the options) shows the origin alone. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `WebhookPublisher { ${this.name}: ${this.#origin} }`;
  }

  toJSON(): object {
    return { name: this.name, url: this.#origin };
  }

  /** Follows the shutdown signal of the app that uses the publisher; false once it aborted. */
  #watch(signal: AbortSignal): boolean {
    if (signal.aborted) return false;
    if (this.#signal !== signal) {
      // Each call may bring a signal of its own (aborted at shutdown): the last one given is followed, alone.
      this.#unwatch?.();
      this.#signal = signal;
      this.#unwatch = onAbort(signal, () => this.#stop());
    }
    return true;
  }

  /** Shutdown's bound is spent: drop what waits, so no timer or socket outlives the app. */
  #stop(): void {
    this.#queue.length = 0;
    this.#flushing = false;
    this.#clearSummaryTimer();
    this.#throttle?.clear();
    this.#signal = undefined;
    this.#unwatch = undefined;
    this.#settleIdle();
  }

  #enqueue(change: ConnectionChange | ConnectionChangeSummary): void {
    const maxQueue = this.#options.maxQueue ?? 100;
    if (this.#queue.length >= maxQueue) {
      this.#queue.shift();
      this.#dropped += 1;
    }
    const { reason, ...rest } = change;
    const told = this.#options.reasons === false ? { ...rest, reason: '' } : change;
    const text = slackEscaped(changeText(told));
    this.#queue.push(this.#options.reasons === false ? { ...rest, text, at: new Date(change.at).toISOString() } : { ...rest, reason, text, at: new Date(change.at).toISOString() });
    if (!this.#sending) void this.#sendAll();
  }

  async #sendAll(): Promise<void> {
    this.#sending = true;
    try {
      let next: WebhookBody | undefined;
      while ((next = this.#queue.shift()) && this.#signal && !this.#signal.aborted) {
        await this.#deliver(this.#withDropped(next), this.#signal);
      }
    } finally {
      this.#sending = false;
      this.#settleIdle();
    }
  }

  /** The first message after a drop says so, in its fields and its text, and the log tells once. */
  #withDropped(body: WebhookBody): WebhookBody {
    if (this.#dropped === 0) return body;
    const dropped = this.#dropped;
    this.#dropped = 0;
    this.#logger.warn(messages.webhookDropped(this.name, this.#origin, dropped, this.#options.maxQueue ?? 100));
    return { ...body, dropped, text: `${body.text} (${dropped} older message(s) dropped)` };
  }

  async #deliver(body: WebhookBody, signal: AbortSignal): Promise<void> {
    const payload = JSON.stringify(body);
    const { retries = 3, retryDelayMs = 1_000, maxRetryDelayMs = 30_000 } = this.#options;
    for (let attempt = 1; ; attempt += 1) {
      const outcome = await this.#attempt(payload, signal);
      if (outcome.ok || signal.aborted) return;
      if (this.#flushing && !outcome.answered) return this.#giveUpAtShutdown(body, attempt, outcome.why);
      if (!outcome.retry || attempt > retries) {
        this.#logger.warn(messages.webhookGaveUp(this.name, this.#origin, body.text, attempt, outcome.why));
        return;
      }
      const backoff = backoffDelay(attempt, { initialDelayMs: retryDelayMs, maxDelayMs: maxRetryDelayMs, factor: 2, jitter: 0.5 }, Math.random);
      const wait = Math.min(maxRetryDelayMs, Math.max(backoff, outcome.retryAfterMs ?? 0));
      await this.#sleep(this.#flushing ? Math.min(wait, FLUSH_RETRY_WAIT_MS) : wait, signal);
      if (this.#flushing && !signal.aborted && !outcome.answered) return this.#giveUpAtShutdown(body, attempt, outcome.why);
    }
  }

  /**
   * At shutdown the receiver is not there (refused, or silent past FLUSH_ATTEMPT_MS): no retry, and the
   * messages behind are not tried either, so that it costs one attempt, not the whole flush bound (a
   * test's afterAll has 5 s).
   */
  #giveUpAtShutdown(body: WebhookBody, attempts: number, why: string): void {
    const left = this.#queue.length;
    this.#queue.length = 0;
    this.#logger.warn(messages.webhookGaveUpAtShutdown(this.name, this.#origin, body.text, attempts, why, left));
  }

  /** Waits out a retry's backoff; the shutdown's abort or the flush ends it early. */
  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stopListening();
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      const stopListening = onAbort(signal, done);
      this.#wake = done;
    });
  }

  /** One POST under its own deadline, which covers reading the answer. */
  async #attempt(payload: string, shutdown: AbortSignal): Promise<Attempt> {
    const configuredMs = this.#options.timeoutMs ?? 5_000;
    let timeoutMs = this.#flushing ? Math.min(configuredMs, FLUSH_ATTEMPT_MS) : configuredMs;
    // One controller per attempt, aborted by its deadline or by the shutdown; both listeners go in finally.
    const attempt = new AbortController();
    let timedOut = false;
    const expire = () => {
      timedOut = true;
      attempt.abort(new Error(messages.webhookNoAnswer(timeoutMs)));
    };
    let timer = setTimeout(expire, timeoutMs);
    this.#hurry = () => {
      if (timeoutMs <= FLUSH_ATTEMPT_MS) return;
      clearTimeout(timer);
      timeoutMs = FLUSH_ATTEMPT_MS;
      timer = setTimeout(expire, timeoutMs);
    };
    const stopListening = onAbort(shutdown, () => attempt.abort(shutdown.reason));
    const signal = attempt.signal;
    try {
      const { status, retryAfter } = await post(this.#options.url, this.#headers(payload), payload, signal);
      if (status >= 200 && status < 300) return { ok: true };
      const retry = status >= 500 || status === 408 || status === 429;
      return { ok: false, retry, answered: true, why: messages.webhookStatus(status), retryAfterMs: retryAfterMs(retryAfter) };
    } catch (error) {
      const why = timedOut ? messages.webhookNoAnswer(timeoutMs) : errorText((error as { cause?: unknown })?.cause ?? error);
      // Through the logger, which scrubs; the URL never reaches a message of ours.
      return { ok: false, retry: true, answered: false, why };
    } finally {
      clearTimeout(timer);
      this.#hurry = undefined;
      stopListening();
    }
  }

  #headers(payload: string): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'nestjs-connection-health' };
    const { secret } = this.#options;
    if (secret === undefined) return headers;
    // The timestamp is signed with the body: a receiver refuses an old one, so a captured request cannot be replayed later.
    const timestamp = String(Math.floor(Date.now() / 1_000));
    headers[TIMESTAMP_HEADER] = timestamp;
    headers[SIGNATURE_HEADER] = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${payload}`).digest('hex')}`;
    return headers;
  }

  #armSummaries(): void {
    const dueAt = this.#throttle?.nextDueAt();
    if (dueAt === undefined || this.#summaryTimer) return;
    this.#summaryTimer = setTimeout(() => {
      this.#summaryTimer = undefined;
      for (const summary of this.#throttle?.due(Date.now()) ?? []) this.#enqueue(summary);
      this.#armSummaries();
    }, Math.max(0, dueAt - Date.now()));
    // A summary still to come must not keep a process alive that has nothing else to do.
    this.#summaryTimer.unref();
  }

  #clearSummaryTimer(): void {
    clearTimeout(this.#summaryTimer);
    this.#summaryTimer = undefined;
  }

  #settleIdle(): void {
    if (this.#sending && this.#signal) return;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}

/** The parts of a webhook URL that are its secret, in the forms an error may show: whole, path and query, userinfo. */
function urlSecrets(url: string): string[] {
  try {
    const parsed = new URL(url);
    const rest = `${parsed.pathname}${parsed.search}`;
    return [url, parsed.href, rest.length > 1 ? rest : undefined, parsed.search || undefined, decodeURIComponent(parsed.password) || undefined].filter(
      (part): part is string => part !== undefined,
    );
  } catch {
    return [url];
  }
}

/**
 * POSTs `payload` on a connection of its own (no agent: `Connection: close`), read to its end, and resolves
 * with the status. Not fetch(): undici keeps a pooled socket open after an abort (it connects afresh at
 * once), which would outlive app.close(). An abort destroys the socket, whether the answer had begun or not.
 */
function post(url: string, headers: Record<string, string>, payload: string, signal: AbortSignal): Promise<{ status: number; retryAfter: string | null }> {
  const client = new URL(url).protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(payload)) }, agent: false, signal }, (response) => {
      response.resume();
      response.on('error', reject);
      response.on('close', () => {
        if (!response.complete) return reject(signal.reason ?? new Error('the answer ended early'));
        const retryAfter = response.headers['retry-after'];
        resolve({ status: response.statusCode ?? 0, retryAfter: typeof retryAfter === 'string' ? retryAfter : null });
      });
    });
    request.on('error', reject);
    request.end(payload);
  });
}

/** A Retry-After of seconds (the HTTP-date form is left to the backoff). */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null || !/^\d+$/.test(header.trim())) return undefined;
  return Number(header) * 1_000;
}

/** Slack's escaping of the three characters its markup uses (`<!channel>`, `<url|label>`); Teams shows them as they were. */
function slackEscaped(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
