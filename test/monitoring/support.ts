/** Helpers shared by the deployment and monitoring tests: paths, YAML, promtool, PromQL checks. */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { delimiter, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { exportedSeries, PROMETHEUS_SYNTHETIC_METRICS, type SeriesInfo } from './exported-metrics.js';
import { extractRefs } from './promql.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const repoPath = (...parts: string[]) => join(ROOT, ...parts);
export const rel = (abs: string) => relative(ROOT, abs);

export function readText(path: string): string {
  return readFileSync(repoPath(path), 'utf8');
}

/** One YAML document; `<<` merge keys resolved (docker-compose uses them). */
export function readYaml<T = any>(path: string): T {
  return parse(readText(path), { merge: true, prettyErrors: true }) as T;
}

/** Every document of a multi-document YAML file; throws on the first syntax error. */
export function readYamlDocuments<T = any>(path: string): T[] {
  const docs = parseAllDocuments(readText(path), { merge: true, prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  for (const d of list) {
    if (d.errors.length > 0) throw new Error(`${path}: ${d.errors.map((e) => e.message).join('; ')}`);
  }
  return list.map((d) => d.toJS() as T).filter((d) => d !== null && d !== undefined);
}

/** Files below a repository folder, recursively, as repository-relative paths. */
export function listFiles(dir: string, match: (path: string) => boolean = () => true): string[] {
  const out: string[] = [];
  const walk = (abs: string) => {
    for (const name of readdirSync(abs)) {
      const p = join(abs, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (match(p)) out.push(rel(p));
    }
  };
  walk(repoPath(dir));
  return out.sort();
}

// ---------------------------------------------------------------- external tools

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, cmd);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

/**
 * promtool's path. A missing promtool is a failure, not a skip: CI installs it
 * (Debian package `prometheus`), and these checks are the only test of the Prometheus files.
 */
export function promtoolPath(): string {
  const p = process.env.PROMTOOL ?? which('promtool');
  if (!p || !existsSync(p)) {
    throw new Error(
      'promtool not found: install it (Debian: `apt-get install -y prometheus`) or set PROMTOOL=/path/to/promtool. ' +
        'The Prometheus config and rules cannot be checked without it.',
    );
  }
  return p;
}

export interface RunResult {
  status: number | null;
  output: string;
}

export function run(cmd: string, args: string[], cwd = ROOT): RunResult {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export function promtool(args: string[], cwd = ROOT): RunResult {
  return run(promtoolPath(), args, cwd);
}

/** kubectl, when installed, renders kustomizations; the structural tests run without it. */
export function kubectlPath(): string | undefined {
  return process.env.KUBECTL ?? which('kubectl');
}

// ---------------------------------------------------------------- PromQL against the exported metrics

export const SERIES: Map<string, SeriesInfo> = exportedSeries();

export interface ExprCheck {
  metrics: string[];
  problems: string[];
  /** Labels the result can have, when the expression aggregates `by (...)`; undefined otherwise. */
  resultLabels?: Set<string>;
}

/**
 * Every metric an expression selects must be exported by a service (EXPORTED_METRICS), created by
 * Prometheus (`up`), or recorded by a rule in `recorded`; every label it matches or groups by must be
 * one of those metrics' labels (not checked when a recorded series or label_replace is involved).
 */
export function checkExpr(expr: string, recorded: ReadonlySet<string> = new Set()): ExprCheck {
  const problems: string[] = [];
  let refs;
  try {
    refs = extractRefs(expr);
  } catch (e) {
    return { metrics: [], problems: [(e as Error).message] };
  }
  const allowed = new Set<string>();
  let labelsKnown = !refs.functions.some((f) => f === 'label_replace' || f === 'label_join');
  for (const m of refs.metrics) {
    const series = SERIES.get(m);
    const synthetic = PROMETHEUS_SYNTHETIC_METRICS[m];
    if (series) series.labels.forEach((l) => allowed.add(l));
    else if (synthetic) synthetic.forEach((l) => allowed.add(l));
    else if (recorded.has(m)) labelsKnown = false;
    else problems.push(`unknown metric "${m}" (not in test/monitoring/exported-metrics.ts nor recorded by a rule)`);
  }
  if (labelsKnown && refs.metrics.length > 0) {
    for (const l of [...refs.matcherLabels, ...refs.groupingLabels]) {
      if (!allowed.has(l)) problems.push(`label "${l}" is not a label of ${refs.metrics.join(', ')}`);
    }
  }
  const hasWithout = /\bwithout\s*\(/.test(expr);
  const resultLabels = refs.groupingLabels.length > 0 && !hasWithout ? new Set(refs.groupingLabels) : undefined;
  return { metrics: refs.metrics, problems, resultLabels };
}

// ---------------------------------------------------------------- rules

export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function loadRules(path = 'monitoring/prometheus/rules/actionedx.rules.yml'): Rule[] {
  const doc = readYaml<{ groups: { name: string; rules: Rule[] }[] }>(path);
  return doc.groups.flatMap((g) => g.rules);
}

export function recordedNames(): Set<string> {
  return new Set(loadRules().flatMap((r) => (r.record ? [r.record] : [])));
}
