import type { ConnectionEvent } from '../core/connection-event.js';
import type { ConnectionState } from '../core/connection-state.js';

/** Heartbeats the sparkline draws. */
export const RTT_SAMPLES = 60;
/** How far back the timeline reaches. */
export const TIMELINE_MS = 60 * 60 * 1_000;
/** A flapping link must not grow the timeline without bound within its hour. */
export const TIMELINE_MAX = 100;

export interface Transition {
  readonly at: number;
  readonly from: ConnectionState;
  readonly to: ConnectionState;
  /** Scrubbed by the monitor when the event was made. */
  readonly reason: string;
}

/**
 * What the status page shows of one connection's past, kept from bootstrap because events$ does not replay:
 * the RTTs of the last RTT_SAMPLES heartbeats (NaN for a beat that failed) in a ring, and the transitions of
 * the last hour (at most TIMELINE_MAX). Fixed memory per connection; nothing runs between events.
 */
export class ConnectionHistory {
  private readonly rtts = new Float64Array(RTT_SAMPLES);
  /** Beats recorded so far; the next one goes to `beats % RTT_SAMPLES`. */
  private beats = 0;
  private readonly timeline: Transition[] = [];

  record(event: ConnectionEvent): void {
    if (event.type === 'heartbeat') {
      this.rtts[this.beats % RTT_SAMPLES] = event.ok ? (event.rttMs ?? 0) : Number.NaN;
      this.beats++;
    } else {
      this.timeline.push({ at: event.at, from: event.from, to: event.to, reason: event.reason });
      this.prune(event.at);
    }
  }

  /** The last heartbeats' RTTs in ms, oldest first; NaN where a beat failed. */
  recentRtts(): number[] {
    const count = Math.min(this.beats, RTT_SAMPLES);
    const out: number[] = [];
    for (let i = this.beats - count; i < this.beats; i++) out.push(this.rtts[i % RTT_SAMPLES]!);
    return out;
  }

  /** The transitions of the hour before `now`, oldest first. */
  transitions(now: number): readonly Transition[] {
    this.prune(now);
    return this.timeline;
  }

  private prune(now: number): void {
    let drop = Math.max(0, this.timeline.length - TIMELINE_MAX);
    while (drop < this.timeline.length && this.timeline[drop]!.at < now - TIMELINE_MS) drop++;
    if (drop > 0) this.timeline.splice(0, drop);
  }
}
