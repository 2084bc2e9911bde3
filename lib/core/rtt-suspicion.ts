import type { SuspicionOptions } from './monitor-options.js';

/**
 * Phi accrual suspicion over the round trips of past heartbeats (Hayashibara et al., as in Akka and
 * Cassandra, here applied to how long a ping takes rather than to when a heartbeat arrives). phi(t) is
 * -log10 of the probability that a healthy answer takes longer than t, the round trips being normal with
 * their recent mean and standard deviation (floored at minStdDevMs, so a very steady history does not make
 * every small hiccup suspect). A beat still unanswered when phi crosses phiThreshold is suspect: the
 * connection reads degraded long before the hard deadline, and up again when the beat answers.
 *
 * Mean and variance are exponentially weighted over about `windowSize` beats (alpha = 2 / (windowSize + 1),
 * as TCP estimates its round trip): a few numbers per connection instead of a window of samples, which
 * matters at ten thousand connections.
 */
export class RttSuspicion {
  private count = 0;
  private mean = 0;
  private variance = 0;
  private readonly alpha: number;
  /** Standard deviations above the mean at which phi reaches the threshold. */
  private readonly deviations: number;

  constructor(private readonly options: SuspicionOptions) {
    this.alpha = 2 / (options.windowSize + 1);
    this.deviations = deviationsForPhi(options.phiThreshold);
  }

  record(rttMs: number): void {
    this.count += 1;
    if (this.count === 1) {
      this.mean = rttMs;
      return;
    }
    const delta = rttMs - this.mean;
    this.mean += this.alpha * delta;
    this.variance = (1 - this.alpha) * (this.variance + this.alpha * delta * delta);
  }

  /** Recent mean round trip, once minSamples were recorded. */
  get meanMs(): number | undefined {
    return this.count >= this.options.minSamples ? this.mean : undefined;
  }

  /** How long a beat may go unanswered before it is suspect; undefined while the history is too short. */
  suspectAfterMs(): number | undefined {
    const mean = this.meanMs;
    if (mean === undefined) return undefined;
    return mean + Math.max(Math.sqrt(this.variance), this.options.minStdDevMs) * this.deviations;
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
