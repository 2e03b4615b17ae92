import { counterSum } from '@actionedx/testkit';
import { procCpuSeconds, procRssBytes } from './procs.js';

/** One process whose CPU time the bench reads before and after a measurement. */
export interface CpuProbe {
  name: string;
  /** Where the figure comes from, for the report. */
  source: string;
  /** CPU seconds used so far. */
  read(): Promise<number>;
}

export async function scrapeMetrics(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/metrics`);
  if (!res.ok) throw new Error(`${baseUrl}/metrics answered ${res.status}`);
  return res.text();
}

export interface ProcessFigures {
  cpuSeconds: number;
  rssBytes: number;
  heapUsedBytes: number;
}

/** prom-client's default process metrics of a service. */
export async function processFigures(baseUrl: string): Promise<ProcessFigures> {
  const text = await scrapeMetrics(baseUrl);
  return {
    cpuSeconds: counterSum(text, 'process_cpu_seconds_total'),
    rssBytes: counterSum(text, 'process_resident_memory_bytes'),
    heapUsedBytes: counterSum(text, 'nodejs_heap_size_used_bytes'),
  };
}

/** A platform service: `process_cpu_seconds_total` from its own /metrics. */
export const metricsProbe = (name: string, baseUrl: string): CpuProbe => ({
  name,
  source: '/metrics process_cpu_seconds_total',
  read: async () => (await processFigures(baseUrl)).cpuSeconds,
});

/** Any local process: utime + stime from /proc. */
export const pidProbe = (name: string, pid: number | undefined): CpuProbe => ({
  name,
  source: '/proc/<pid>/stat',
  read: async () => (pid ? procCpuSeconds(pid) : Number.NaN),
});

export const pidRss = (pid: number): number => procRssBytes(pid);

/** The machine's Redis (shared with whatever else runs here): used_cpu_user + used_cpu_sys from INFO. */
export function redisProbe(info: () => Promise<string>): CpuProbe {
  return {
    name: 'redis-server',
    source: 'INFO cpu (machine-wide Redis)',
    read: async () => {
      const text = await info();
      const get = (k: string) => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(text)?.[1] ?? Number.NaN);
      return get('used_cpu_user') + get('used_cpu_sys');
    },
  };
}

export type CpuSnapshot = Record<string, number>;

export async function snapshot(probes: CpuProbe[]): Promise<CpuSnapshot> {
  const values = await Promise.all(probes.map((p) => p.read().catch(() => Number.NaN)));
  return Object.fromEntries(probes.map((p, i) => [p.name, values[i]!]));
}

/** CPU microseconds per request of each probe between two snapshots. */
export function cpuPerRequestUs(before: CpuSnapshot, after: CpuSnapshot, requests: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(after)) out[k] = requests > 0 ? ((after[k]! - (before[k] ?? Number.NaN)) * 1e6) / requests : Number.NaN;
  return out;
}

/** Sum and count of a Prometheus histogram (all label sets that pass `filter`). */
export interface HistTotals {
  sum: number;
  count: number;
}

export async function histTotals(baseUrl: string, name: string, filter?: (labels: string) => boolean): Promise<HistTotals> {
  const text = await scrapeMetrics(baseUrl);
  return { sum: counterSum(text, `${name}_sum`, filter), count: counterSum(text, `${name}_count`, filter) };
}

/** Mean in milliseconds of what a histogram observed between two readings. */
export const meanMsBetween = (a: HistTotals, b: HistTotals): number =>
  b.count > a.count ? ((b.sum - a.sum) * 1000) / (b.count - a.count) : Number.NaN;
