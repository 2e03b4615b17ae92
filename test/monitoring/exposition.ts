/**
 * Checks a service's `/metrics` text against EXPORTED_METRICS: for the integration tests that scrape
 * the running services. A labelled metric that has seen no event yet has only its # TYPE line, so
 * labels are checked only where samples exist.
 */
import { EXPORTED_METRICS, seriesNames, type MetricSpec, type ServiceName } from './exported-metrics.js';

export interface Exposition {
  types: Map<string, string>;
  /** series name → label names seen on its samples */
  samples: Map<string, Set<string>>;
}

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+/.exec(line);
    if (!sample) continue;
    const labels = samples.get(sample[1]!) ?? new Set<string>();
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) labels.add(m[1]!);
    samples.set(sample[1]!, labels);
  }
  return { types, samples };
}

/** What the dashboards and rules expect of `service` that its /metrics text does not provide. */
export function expositionProblems(service: ServiceName, text: string): string[] {
  const { types, samples } = parseExposition(text);
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(EXPORTED_METRICS[service]) as [string, MetricSpec][]) {
    const type = types.get(name);
    if (!type) {
      problems.push(`${name}: not exported`);
      continue;
    }
    if (type !== spec.type) problems.push(`${name}: type ${type}, expected ${spec.type}`);
    const present = seriesNames(name, spec).filter((s) => samples.has(s));
    const labels = new Set(present.flatMap((s) => [...samples.get(s)!]));
    if (present.length === 0) continue;
    for (const l of ['service', ...spec.labels]) {
      if (!labels.has(l)) problems.push(`${name}: no label "${l}"`);
    }
  }
  return problems;
}
