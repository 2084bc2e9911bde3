import { isServing, type ConnectionState } from '../core/connection-state.js';
import type { ConnectionChange, ConnectionChangeSummary } from './connection-change.js';

export interface ThrottleOptions {
  /** Length of a connection's window. Default 60 000. */
  windowMs?: number;
  /** Changes of one connection sent one by one per window, for outages and recoveries and apart for up <-> degraded flaps; the rest go into one summary at its end. Default 3. */
  maxPerWindow?: number;
}

export const DEFAULT_THROTTLE = { windowMs: 60_000, maxPerWindow: 3 } as const;

/**
 * What a change counts against: an outage or a recovery (into or out of lost), or a flap of a connection
 * that still serves (up <-> degraded). Apart, so that a busy pool's flaps never hold back the outage after them.
 */
type Budget = 'outage' | 'degraded';

interface Window {
  /** When the window began. */
  startedAt: number;
  /** Changes sent one by one in it, per budget (a budget spent in the window before a summary starts spent). */
  sent: Record<Budget, number>;
  /** Changes counted in it, the sent ones included. */
  changes: number;
  /** The last transition held back, if any. */
  held?: ConnectionChange;
}

/**
 * Per connection, lets `maxPerWindow` changes of each budget through per window and holds back the rest,
 * which become one summary when the window ends ("db changed state 7 times in the last 60 s, now up"): a
 * flapping link makes one message a window, not a storm. No timers: the caller asks at `nextDueAt()`.
 */
export class ChangeThrottle {
  private readonly windows = new Map<string, Window>();
  private readonly windowMs: number;
  private readonly maxPerWindow: number;

  constructor(options: ThrottleOptions = {}) {
    this.windowMs = options.windowMs ?? DEFAULT_THROTTLE.windowMs;
    this.maxPerWindow = options.maxPerWindow ?? DEFAULT_THROTTLE.maxPerWindow;
  }

  /**
   * True when `change` is to be sent now; false when it was held back for the window's summary, or folded.
   * Per window, `maxPerWindow` outages and recoveries (into or out of lost: down, reconnecting, failed) go
   * one by one, and apart from them `maxPerWindow` flaps between up and degraded. The down <-> reconnecting
   * cycles of one outage are folded: the next message sent carries their `reconnectAttempts`, so an ordinary
   * outage is told at once as down, then up. The steps of start-up and shutdown (idle, connecting, closing,
   * closed) pass without counting; `failed` always passes, counted, and supersedes what the window held back.
   */
  offer(change: ConnectionChange, now: number): boolean {
    const budget = budgetOf(change.from, change.to);
    if (change.to !== 'failed' && isLost(change.from) && isLost(change.to)) return false;
    if (budget === undefined) return true;
    let window = this.windows.get(change.connection);
    if (!window || now - window.startedAt >= this.windowMs) {
      // A window that ended with transitions held back is summarized first (due() ran late).
      if (window?.held && change.to !== 'failed') return this.hold(window, change);
      window = { startedAt: now, sent: { outage: 0, degraded: 0 }, changes: 0 };
      this.windows.set(change.connection, window);
    }
    window.changes += 1;
    if (change.to === 'failed') {
      window.held = undefined;
      window.sent[budget] += 1;
      return true;
    }
    if (window.sent[budget] < this.maxPerWindow) {
      window.sent[budget] += 1;
      return true;
    }
    window.held = change;
    return false;
  }

  /** When the next summary falls due, or undefined when nothing is held back. */
  nextDueAt(): number | undefined {
    let next: number | undefined;
    for (const window of this.windows.values()) {
      if (window.held && (next === undefined || window.startedAt + this.windowMs < next)) next = window.startedAt + this.windowMs;
    }
    return next;
  }

  /** The summaries of the windows ended by `now` (all of them with `all`, at shutdown), each starting a full window. */
  due(now: number, all = false): ConnectionChangeSummary[] {
    const summaries: ConnectionChangeSummary[] = [];
    for (const [connection, window] of this.windows) {
      if (!window.held || (!all && now - window.startedAt < this.windowMs)) continue;
      const { type: _type, ...last } = window.held;
      summaries.push({ ...last, type: 'summary', changes: window.changes, windowMs: this.windowMs });
      // The next window starts with the spent budgets still spent: a link that keeps flapping goes on yielding one summary a window.
      const spent = (budget: Budget) => (window.sent[budget] >= this.maxPerWindow ? this.maxPerWindow : 0);
      this.windows.set(connection, { startedAt: now, sent: { outage: spent('outage'), degraded: spent('degraded') }, changes: 0 });
    }
    return summaries;
  }

  /** Forgets every window: after a shutdown, a publisher used again starts afresh. */
  clear(): void {
    this.windows.clear();
  }

  private hold(window: Window, change: ConnectionChange): boolean {
    window.changes += 1;
    window.held = change;
    return false;
  }
}

function budgetOf(from: ConnectionState, to: ConnectionState): Budget | undefined {
  if (isLost(from) !== isLost(to) && (isServing(from) || isServing(to))) return 'outage';
  if (isServing(from) && isServing(to)) return 'degraded';
  if (to === 'failed') return 'outage';
  return undefined;
}

/** Out of service: during an outage, still trying, or given up. */
function isLost(state: ConnectionState): boolean {
  return state === 'down' || state === 'reconnecting' || state === 'failed';
}
