import type { Row } from './report.js';

export interface BenchContext {
  quick: boolean;
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
  rows: Row[];
  details: Record<string, unknown>;
}

export interface Scenario {
  id: string;
  title: string;
  run(ctx: BenchContext, out: ScenarioOutcome): Promise<void>;
}
