/** One goal of the issue, checked against a measured figure. */
export interface GoalResult {
  section: string;
  goal: string;
  figure: string;
  met: boolean;
}

/** What one benchmark section hands to the report: its Markdown (tables and notes) and its goals. */
export interface SectionResult {
  title: string;
  markdown: string;
  goals: GoalResult[];
  /** Wall-clock seconds the section took. */
  seconds: number;
}

/** Durations and counts of a run; `quick` shrinks them to check that the scripts work, not to report. */
export interface BenchSettings {
  quick: boolean;
  /** wrk duration per route and condition, seconds. */
  wrkSeconds: number;
  /** Trials per kind and fault. */
  trials: number;
  /** How long the raw client library gets to notice a fault, ms. */
  rawCapMs: number;
  /** Measuring window of the engine scale test, ms. */
  scaleWindowMs: number;
  /** Forced reconnect cycles of the memory test. */
  reconnectCycles: number;
  /** Detection kinds to run, by a part of their label (case-insensitive); empty: all. */
  kinds: string[];
  /** Detection faults to run, by a part of their name (case-insensitive); empty: all. */
  faults: string[];
}

export function benchSettings(quick: boolean, kinds: string[] = [], faults: string[] = []): BenchSettings {
  return quick
    ? { quick, kinds, faults, wrkSeconds: 3, trials: 2, rawCapMs: 10_000, scaleWindowMs: 3_000, reconnectCycles: 100 }
    : { quick, kinds, faults, wrkSeconds: 10, trials: 10, rawCapMs: 60_000, scaleWindowMs: 10_000, reconnectCycles: 1_000 };
}
