import { cpus, platform, release, totalmem } from 'node:os';
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** How a row's goal is judged. */
export type Goal =
  /** product / baseline ≥ value */
  | { kind: 'min_ratio'; value: number }
  /** product / baseline ≤ value */
  | { kind: 'max_ratio'; value: number }
  /** product − baseline ≤ value (same unit as the figures) */
  | { kind: 'max_diff'; value: number }
  /** product ≤ value */
  | { kind: 'max'; value: number }
  /** product = value */
  | { kind: 'eq'; value: number };

export interface Row {
  metric: string;
  unit: string;
  product: number | null;
  baseline: number | null;
  goal?: Goal;
  note?: string;
}

export interface ScenarioResult {
  id: string;
  title: string;
  /** What the baseline column is. */
  baseline: string;
  rows: Row[];
  /** Raw figures: rounds, CPU per process, settings. */
  details: Record<string, unknown>;
  error?: string;
  seconds: number;
}

export const ratioOf = (r: Row): number | null =>
  r.product !== null && r.baseline !== null && r.baseline !== 0 && Number.isFinite(r.product) && Number.isFinite(r.baseline)
    ? r.product / r.baseline
    : null;

/** true/false when the row has a goal and figures to judge it, else null. */
export function metOf(r: Row): boolean | null {
  if (!r.goal || r.product === null || !Number.isFinite(r.product)) return null;
  const ratio = ratioOf(r);
  switch (r.goal.kind) {
    case 'min_ratio':
      return ratio === null ? null : ratio >= r.goal.value;
    case 'max_ratio':
      return ratio === null ? null : ratio <= r.goal.value;
    case 'max_diff':
      return r.baseline === null ? null : r.product - r.baseline <= r.goal.value;
    case 'max':
      return r.product <= r.goal.value;
    case 'eq':
      return r.product === r.goal.value;
  }
}

export function goalText(r: Row): string {
  const g = r.goal;
  if (!g) return '';
  switch (g.kind) {
    case 'min_ratio':
      return `≥ ${g.value}×`;
    case 'max_ratio':
      return `≤ ${g.value}×`;
    case 'max_diff':
      return `+≤ ${g.value} ${r.unit}`;
    case 'max':
      return `≤ ${g.value} ${r.unit}`;
    case 'eq':
      return `= ${g.value}`;
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

function extraText(r: Row): string {
  if (r.goal?.kind === 'max_diff' && r.product !== null && r.baseline !== null) {
    const d = r.product - r.baseline;
    return ` (+${fmt(d)})`.replace('+-', '−');
  }
  return '';
}

/** The one table: scenario, metric, product, baseline, ratio, goal, met? */
export function renderTable(results: ScenarioResult[]): string {
  const header = ['scenario', 'metric', 'product', 'baseline', 'ratio', 'goal', 'met?'];
  const lines: string[][] = [];
  for (const s of results) {
    if (s.error) lines.push([s.id, 'FAILED', s.error.replace(/\s+/g, ' ').slice(0, 160), '', '', '', '✗']);
    for (const r of s.rows) {
      const ratio = ratioOf(r);
      const met = metOf(r);
      lines.push([
        s.id,
        `${r.metric}${r.unit ? ` (${r.unit})` : ''}`,
        `${fmt(r.product)}${extraText(r)}`,
        fmt(r.baseline),
        ratio === null ? '' : `${ratio.toFixed(2)}×`,
        goalText(r),
        met === null ? '' : met ? 'yes' : 'NO',
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => [...(l[i] ?? '')].length)));
  const row = (cells: string[]) => `| ${cells.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join(' | ')} |`;
  return [row(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(row)].join('\n');
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
