import type { Row, RoundRow } from './report.js';

export interface BenchContext {
  quick: boolean;
  /** Rounds every scenario runs (product and baseline in turns in each); figures are their medians. */
  rounds: number;
  /** Services to run under --cpu-prof. */
  profile: string[];
  /** Path of the wrk binary. */
  wrk: string;
  log(msg: string): void;
  /** A duration in seconds: the full one, or the short one under --quick. */
  secs(full: number, quick: number): number;
  /** A count: the full one, or the small one under --quick. */
  count(full: number, quick: number): number;
}

export interface ScenarioOutcome {
  baseline: string;
  /** Every round's figures (`record` adds them); the report aggregates them per metric. */
  rows: RoundRow[];
  details: Record<string, unknown>;
}

export interface Scenario {
  id: string;
  title: string;
  run(ctx: BenchContext, out: ScenarioOutcome): Promise<void>;
}

/** Adds the figures of one round (0-based). */
export function record(out: ScenarioOutcome, round: number, ...rows: Row[]): void {
  for (const r of rows) out.rows.push({ ...r, round });
}

export type Side = 'product' | 'baseline';

/**
 * Which side runs first in a round: the product in even rounds, the baseline in odd ones (P B, B P, P B ...),
 * so that neither side always runs on a machine the other has just warmed up or left busy.
 */
export const turnOrder = (round: number): [Side, Side] => (round % 2 === 0 ? ['product', 'baseline'] : ['baseline', 'product']);
