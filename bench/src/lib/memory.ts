import { record, type ScenarioOutcome } from './context.js';
import { processFigures } from './probes.js';
import { procRssBytes } from './procs.js';
import { aggregate, type ScenarioResult } from './report.js';
import { median } from './stats.js';

const MiB = 2 ** 20;
/** The gateway's memory goal: resident set after the bench's load. */
export const GATEWAY_RSS_GOAL_MIB = 100;

/** The memory of one process at one moment of a scenario. */
export interface MemoryReading {
  scenario: string;
  /** What the process is, as the table names it: `gateway`, `orchestrator 2`, `gateway (relay stack)`, ... */
  service: string;
  /** Which product service it is, or stands in for (a baseline's front stands where the gateway does). */
  role: 'gateway' | 'orchestrator';
  side: 'product' | 'baseline';
  /** Just after the service was ready, or after (some of) the scenario's load. */
  phase: 'start' | 'end';
  /** When an `end` reading was taken, if not when the stack stopped (`after the idle rounds`). */
  stage?: string;
  rssBytes: number;
  /** NaN for processes without a /metrics (the baselines). */
  heapUsedBytes: number;
}

const readings: MemoryReading[] = [];

/** The readings taken since the last call. */
export function takeMemoryReadings(): MemoryReading[] {
  return readings.splice(0);
}

/** A platform service's RSS and heap from its /metrics (prom-client's process metrics); a failed read is left out. */
export async function noteServiceMemory(r: Omit<MemoryReading, 'rssBytes' | 'heapUsedBytes' | 'side'>, url: string): Promise<void> {
  try {
    const f = await processFigures(url);
    readings.push({ ...r, side: 'product', rssBytes: f.rssBytes, heapUsedBytes: f.heapUsedBytes });
  } catch {
    /* the service is gone: no reading */
  }
}

/** A baseline process's RSS from /proc, taken after the scenario's load, before it is stopped. */
export function noteBaselineMemory(r: Omit<MemoryReading, 'rssBytes' | 'heapUsedBytes' | 'side' | 'phase'>, pid: number): void {
  const rss = procRssBytes(pid);
  if (Number.isFinite(rss)) readings.push({ ...r, side: 'baseline', phase: 'end', rssBytes: rss, heapUsedBytes: Number.NaN });
}

/**
 * Memory after the load: each service's resident set when its scenario's stack stopped, beside the baseline
 * process that stands in its place where the scenario has one (the bare express front and worker). One reading
 * per stack, so these are not medians of rounds. Every scenario starts a gateway of its own, so "after the whole
 * bench" is the largest of the gateways' readings.
 */
export function memoryResult(all: MemoryReading[]): ScenarioResult {
  const out: ScenarioOutcome = { baseline: '', rows: [], details: { readings: all } };
  const ends = all.filter((m) => m.phase === 'end' && m.side === 'product');
  const scenarios = [...new Set(ends.map((m) => m.scenario))];
  for (const sc of scenarios) {
    for (const m of ends.filter((e) => e.scenario === sc).sort((a, b) => a.role.localeCompare(b.role) || a.service.localeCompare(b.service))) {
      // The baseline process read at the same point of the same scenario, in the same place.
      const base = all.find((b) => b.scenario === sc && b.side === 'baseline' && b.role === m.role && b.stage === m.stage);
      record(out, 0, {
        metric: `${m.service} RSS ${m.stage ?? 'at the end'} of ${sc}${base ? ` (baseline: ${base.service})` : ''}`,
        unit: 'MiB',
        product: m.rssBytes / MiB,
        baseline: base ? base.rssBytes / MiB : null,
      });
    }
  }
  const startRss = all.filter((m) => m.phase === 'start' && m.role === 'gateway').map((m) => m.rssBytes / MiB);
  if (startRss.length > 0) record(out, 0, { metric: `gateway RSS once ready, before any load (median of ${startRss.length} starts)`, unit: 'MiB', product: median(startRss), baseline: null });
  const gateways = ends.filter((m) => m.role === 'gateway' && m.stage === undefined);
  if (gateways.length > 0) {
    const worst = gateways.reduce((a, b) => (b.rssBytes > a.rssBytes ? b : a));
    record(out, 0, {
      metric: `gateway RSS after the bench (the largest at the end of a scenario: ${worst.scenario})`,
      unit: 'MiB',
      product: worst.rssBytes / MiB,
      baseline: null,
      goal: { kind: 'max', value: GATEWAY_RSS_GOAL_MIB },
    });
  }
  return {
    id: 'memory',
    title: 'Memory of the services when each scenario ended',
    baseline: 'the baseline process in the same place, where the scenario has one',
    // One reading each: shown without the "(n of N rounds)" remark.
    rounds: 1,
    figures: aggregate(out.rows),
    rows: out.rows,
    details: out.details,
    seconds: 0,
  };
}
