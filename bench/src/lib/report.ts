import { cpus, platform, release, totalmem } from 'node:os';
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { LoadFigures } from './machine-load.js';
import { spreadOf, type Spread } from './stats.js';

/** How a row's goal is judged (on the medians of the rounds, see `aggregate`). */
export type Goal =
  /** product / baseline ≥ value (the median of the per-round ratios) */
  | { kind: 'min_ratio'; value: number }
  /** product / baseline ≤ value (the median of the per-round ratios) */
  | { kind: 'max_ratio'; value: number }
  /** product − baseline ≤ value, same unit as the figures (the median of the per-round differences) */
  | { kind: 'max_diff'; value: number }
  /** product ≤ value (the median of the rounds) */
  | { kind: 'max'; value: number }
  /** product = value in every round (a count that must hold every time: errors, upstream calls) */
  | { kind: 'eq'; value: number };

/** One figure of one round: what a scenario measures. */
export interface Row {
  metric: string;
  unit: string;
  product: number | null;
  baseline: number | null;
  goal?: Goal;
  /** What the "vs baseline" column shows: the ratio (default) or the difference (always so for a +≤ goal). */
  versus?: 'ratio' | 'diff';
  note?: string;
}

/** A row as measured in round `round` (0-based); the JSON keeps these raw. */
export interface RoundRow extends Row {
  round: number;
}

/** A metric over every round: medians and ranges, and the verdict on the medians. */
export interface Figure {
  metric: string;
  unit: string;
  goal?: Goal;
  versus?: 'ratio' | 'diff';
  note?: string;
  /** Rounds that measured this metric. */
  rounds: number;
  product: Spread | null;
  baseline: Spread | null;
  /** product / baseline computed in each round, then the median and range of those (not median / median). */
  ratio: Spread | null;
  /** product − baseline in each round, then the median and range of those. */
  diff: Spread | null;
  met: boolean | null;
}

export interface ScenarioResult {
  id: string;
  title: string;
  /** What the baseline column is. */
  baseline: string;
  /** Rounds the scenario was asked for. */
  rounds: number;
  /** One per metric, aggregated over the rounds. */
  figures: Figure[];
  /** The raw figures of every round. */
  rows: RoundRow[];
  /** Raw figures: per-round details, CPU per process, settings. */
  details: Record<string, unknown>;
  error?: string;
  seconds: number;
  /** CPU on the machine while the scenario ran: the bench's, and everyone else's. */
  load?: LoadFigures;
}

const ratio = (p: number | null, b: number | null): number | null =>
  p !== null && b !== null && b !== 0 && Number.isFinite(p) && Number.isFinite(b) ? p / b : null;
const difference = (p: number | null, b: number | null): number | null =>
  p !== null && b !== null && Number.isFinite(p) && Number.isFinite(b) ? p - b : null;

/** The verdict on the medians; null when the row has no goal or no figures to judge. */
function verdict(goal: Goal | undefined, f: Omit<Figure, 'met'>, rows: Row[]): boolean | null {
  if (!goal || !f.product) return null;
  switch (goal.kind) {
    case 'min_ratio':
      return f.ratio ? f.ratio.median >= goal.value : null;
    case 'max_ratio':
      return f.ratio ? f.ratio.median <= goal.value : null;
    case 'max_diff':
      return f.diff ? f.diff.median <= goal.value : null;
    case 'max':
      return f.product.median <= goal.value;
    case 'eq':
      // A missing figure in a round (the round failed to measure it) fails the goal too.
      return rows.every((r) => r.product === goal.value);
  }
}

/** Groups the rounds' rows by metric (first-seen order) into one figure each. */
export function aggregate(rows: readonly RoundRow[]): Figure[] {
  const byMetric = new Map<string, RoundRow[]>();
  for (const r of rows) {
    const k = `${r.metric}\u0000${r.unit}`;
    let list = byMetric.get(k);
    if (!list) byMetric.set(k, (list = []));
    list.push(r);
  }
  return [...byMetric.values()].map((list) => {
    const first = list[0]!;
    const goal = list.find((r) => r.goal)?.goal;
    const note = list.find((r) => r.note)?.note;
    const versus = list.find((r) => r.versus)?.versus;
    const base: Omit<Figure, 'met'> = {
      metric: first.metric,
      unit: first.unit,
      ...(goal ? { goal } : {}),
      ...(versus ? { versus } : {}),
      ...(note ? { note } : {}),
      rounds: new Set(list.map((r) => r.round)).size,
      product: spreadOf(list.map((r) => r.product)),
      baseline: spreadOf(list.map((r) => r.baseline)),
      ratio: spreadOf(list.map((r) => ratio(r.product, r.baseline))),
      diff: spreadOf(list.map((r) => difference(r.product, r.baseline))),
    };
    return { ...base, met: verdict(goal, base, list) };
  });
}

export function goalText(g: Goal | undefined, unit: string): string {
  if (!g) return '';
  switch (g.kind) {
    case 'min_ratio':
      return `≥ ${g.value}×`;
    case 'max_ratio':
      return `≤ ${g.value}×`;
    case 'max_diff':
      return `+≤ ${g.value} ${unit}`;
    case 'max':
      return `≤ ${g.value} ${unit}`;
    case 'eq':
      return `= ${g.value} (all)`;
  }
}

export function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined) return '—';
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  if (Number.isInteger(x) && a < 10_000) return String(x);
  if (a >= 10_000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return '0';
  return x.toFixed(3);
}

const signed = (x: number) => (x < 0 ? `−${fmt(-x)}` : `+${fmt(x)}`);

/** `median [min–max]`, or the one value when the rounds agree or there was one. */
export function fmtSpread(s: Spread | null, f: (x: number) => string = fmt, suffix = ''): string {
  if (!s) return '—';
  if (s.values.length < 2 || s.min === s.max) return `${f(s.median)}${suffix}`;
  return `${f(s.median)}${suffix} [${f(s.min)}–${f(s.max)}]`;
}

/** The "vs baseline" cell: the difference for a +≤ goal, else the ratio. */
function versus(f: Figure): string {
  if (f.goal?.kind === 'max_diff' || f.versus === 'diff') return f.diff ? `${fmtSpread(f.diff, signed)} ${f.unit}` : '';
  return f.ratio ? fmtSpread(f.ratio, (x) => x.toFixed(2), '×') : '';
}

/** The one table: scenario, metric, product, baseline, vs baseline, goal, met? */
export function renderTable(results: ScenarioResult[]): string {
  const header = ['scenario', 'metric', 'product', 'baseline', 'vs baseline', 'goal', 'met?'];
  const lines: string[][] = [];
  for (const s of results) {
    if (s.error) lines.push([s.id, 'FAILED', s.error.replace(/\s+/g, ' ').slice(0, 160), '', '', '', '✗']);
    for (const f of s.figures) {
      // A figure from fewer rounds than the scenario ran says so.
      const n = f.rounds < s.rounds ? ` (${f.rounds} of ${s.rounds} rounds)` : '';
      lines.push([
        s.id,
        `${f.metric}${f.unit ? ` (${f.unit})` : ''}${n}`,
        fmtSpread(f.product),
        fmtSpread(f.baseline),
        versus(f),
        goalText(f.goal, f.unit),
        f.met === null ? '' : f.met ? 'yes' : 'NO',
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => [...(l[i] ?? '')].length)));
  const row = (cells: string[]) => `| ${cells.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join(' | ')} |`;
  return [row(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(row)].join('\n');
}

/** What the table's cells mean, printed under it. */
export function legend(rounds: number): string {
  return [
    `Each figure: the median of ${rounds} rounds [min–max of the rounds]; product and baseline run in turns in every round, the first of the two alternating from round to round.`,
    '"vs baseline": product / baseline computed in each round, then the median of those ratios [their range]; for a +≤ goal (and rows shown in ms with a sign) the difference product − baseline likewise.',
    'Goals are judged on those medians; an "= n (all)" goal must hold in every round.',
  ].join('\n');
}

export interface Machine {
  cores: number;
  cpuModel: string;
  node: string;
  os: string;
  memoryGiB: number;
  date: string;
  fdLimit: string;
  loadAverage: string;
  /** Share of the machine's CPU busy during one second before the run (other work on the cores). */
  busyBeforeRun: number;
  loadGenerator: string;
}

/** CPU busy share of the whole machine over `ms` (from /proc/stat). */
export async function machineBusy(ms = 1000): Promise<number> {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  try {
    const a = read();
    await new Promise((r) => setTimeout(r, ms));
    const b = read();
    return 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
  } catch {
    return Number.NaN;
  }
}

export function machine(loadGenerator: string, busyBeforeRun: number): Machine {
  let fdLimit = '?';
  try {
    fdLimit = execSync('ulimit -n', { shell: '/bin/bash' }).toString().trim();
  } catch {
    /* unknown */
  }
  let loadAverage = '';
  try {
    loadAverage = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    /* unknown */
  }
  const c = cpus();
  return {
    cores: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    node: process.version,
    os: `${platform()} ${release()}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    date: new Date().toISOString(),
    fdLimit,
    loadAverage,
    busyBeforeRun,
    loadGenerator,
  };
}
