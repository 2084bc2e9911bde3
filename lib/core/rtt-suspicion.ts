import type { SuspicionOptions } from './monitor-options.js';

/**
 * Phi accrual suspicion over the round trips of past heartbeats (Hayashibara et al., as in Akka and
 * Cassandra, here applied to how long a ping takes rather than to when a heartbeat arrives). phi(t) is
 * -log10 of the probability that a healthy answer takes longer than t, the round trips being normal with
 * the window's mean and standard deviation (floored at minStdDevMs, so a very steady history does not
 * make every small hiccup suspect). A beat still unanswered when phi crosses phiThreshold is suspect: the
 * connection reads degraded long before the hard deadline, and up again when the beat answers.
 */
export class RttSuspicion {
  private readonly samples: Float64Array;
  private count = 0;
  private next = 0;
  private sum = 0;
  private sumOfSquares = 0;
  /** Standard deviations above the mean at which phi reaches the threshold. */
  private readonly deviations: number;

  constructor(private readonly options: SuspicionOptions) {
    this.samples = new Float64Array(options.windowSize);
    this.deviations = deviationsForPhi(options.phiThreshold);
  }

  record(rttMs: number): void {
    if (this.count === this.samples.length) {
      const oldest = this.samples[this.next] ?? 0;
      this.sum -= oldest;
      this.sumOfSquares -= oldest * oldest;
    } else {
      this.count += 1;
    }
    this.samples[this.next] = rttMs;
    this.next = (this.next + 1) % this.samples.length;
    this.sum += rttMs;
    this.sumOfSquares += rttMs * rttMs;
  }

  /** Mean round trip of the window, once it holds minSamples. */
  get meanMs(): number | undefined {
    return this.count >= this.options.minSamples ? this.sum / this.count : undefined;
  }

  /** How long a beat may go unanswered before it is suspect; undefined while the history is too short. */
  suspectAfterMs(): number | undefined {
    const mean = this.meanMs;
    if (mean === undefined) return undefined;
    const variance = Math.max(0, this.sumOfSquares / this.count - mean * mean);
    return mean + Math.max(Math.sqrt(variance), this.options.minStdDevMs) * this.deviations;
  }
}

/** phi for a round trip `y` standard deviations above the mean, with the logistic approximation of the normal tail. */
export function phiAt(y: number): number {
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
  return y > 0 ? -Math.log10(e / (1 + e)) : -Math.log10(1 - 1 / (1 + e));
}

/** Inverse of phiAt, by bisection: phi grows with y. */
export function deviationsForPhi(phi: number): number {
  let low = 0;
  let high = 50;
  for (let i = 0; i < 60; i++) {
    const middle = (low + high) / 2;
    if (phiAt(middle) < phi) low = middle;
    else high = middle;
  }
  return high;
}
