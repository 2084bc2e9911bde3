/** Small statistics for benchmark figures; inputs are never sorted in place. */

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank: with 10 trials, p50 is the 5th value and the max is the 10th, no interpolated figure.
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

/** A millisecond figure for a table: no decimals from 10 ms up, one below, two below 1 ms. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  const digits = abs >= 10 ? 0 : abs >= 1 ? 1 : 2;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A whole number with thousands separators. */
export function count(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

export function ratio(numerator: number, denominator: number): string {
  if (!(denominator > 0) || !Number.isFinite(numerator)) return 'n/a';
  const value = numerator / denominator;
  return `${value.toFixed(value >= 10 ? 0 : 2)}x`;
}

/** Epoch milliseconds with sub-millisecond precision, on the same base as the engine's system clock. */
export const now = (): number => performance.timeOrigin + performance.now();
