import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { EXPORTED_METRICS, seriesNames } from './exported-metrics.js';
import { parseGrafanaVariableQuery, substituteGrafanaVariables } from './promql.js';
import { checkExpr, listFiles, loadRules, promtool, readText, readYaml, readYamlDocuments, recordedNames } from './support.js';

interface Target {
  expr?: string;
  refId?: string;
  legendFormat?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  id: number | null;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; datasource?: { uid?: string }; query: string | { query: string }; definition?: string }[] };
}

const DASHBOARD_FILES = listFiles('monitoring/grafana/dashboards', (p) => p.endsWith('.json'));
const dashboards = DASHBOARD_FILES.map((file) => ({ file, json: JSON.parse(readText(file)) as Dashboard }));
const datasources = readYaml<{ datasources: { uid: string; type: string; url: string; isDefault?: boolean }[] }>(
  'monitoring/grafana/provisioning/datasources/prometheus.yml',
).datasources;
const DS_UID = datasources[0]!.uid;
const recorded = recordedNames();
const GRAFANA_BUILTINS = new Set(['__rate_interval', '__interval', '__range', '__interval_ms', '__range_s', '__range_ms']);

const allPanels = (d: Dashboard) => d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = (d: Dashboard) => allPanels(d).filter((p) => p.type !== 'row' && p.type !== 'text');
const exprsOf = (d: Dashboard) => queryPanels(d).flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr ?? '', legend: t.legendFormat })));

describe('Grafana provisioning', () => {
  it('provisions one Prometheus data source with a fixed uid, at the prometheus service', () => {
    expect(datasources).toHaveLength(1);
    expect(datasources[0]).toMatchObject({ type: 'prometheus', uid: 'actionedx-prometheus', url: 'http://prometheus:9090', isDefault: true });
    // `prometheus` resolves in docker-compose and in Kubernetes (k8s/monitoring Service)
    const compose = readYaml('docker-compose.yml');
    expect(compose.services.prometheus.ports).toContain('9090:9090');
    const k8sService = readYamlDocuments('k8s/monitoring/prometheus.yaml').find((d) => d.kind === 'Service');
    expect(k8sService.metadata.name).toBe('prometheus');
    expect(k8sService.spec.ports[0].port).toBe(9090);
  });

  it('loads dashboards from where docker-compose and Kubernetes mount them', () => {
    const provider = readYaml('monitoring/grafana/provisioning/dashboards/dashboards.yml').providers[0];
    const path: string = provider.options.path;
    const compose = readYaml('docker-compose.yml');
    expect(compose.services.grafana.volumes).toContain(`./monitoring/grafana/dashboards:${path}:ro`);
    expect(compose.services.grafana.volumes).toContain('./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro');
    const deployment = readYamlDocuments('k8s/monitoring/grafana.yaml').find((d) => d.kind === 'Deployment');
    const mounts = deployment.spec.template.spec.containers[0].volumeMounts as { name: string; mountPath: string }[];
    expect(mounts).toContainEqual({ name: 'dashboards', mountPath: path, readOnly: true });
  });

  it('has the five dashboards, with distinct uids', () => {
    expect(DASHBOARD_FILES.map((f) => f.split('/').pop())).toEqual(['ai-requests.json', 'cache.json', 'jobs.json', 'service-health.json', 'websocket.json']);
    const uids = dashboards.map((d) => d.json.uid);
    expect(new Set(uids).size).toBe(uids.length);
  });
});

describe.each(dashboards)('dashboard $file', ({ json: d }) => {
  it('is a provisionable dashboard of a current schema', () => {
    expect(d.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(d.title).toBeTruthy();
    expect(d.id).toBeNull();
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(d.schemaVersion).toBeLessThanOrEqual(41);
    expect(queryPanels(d).length).toBeGreaterThan(0);
  });

  it('lays panels out on the 24-column grid without overlap, with unique ids', () => {
    const panels = allPanels(d);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      expect(p.gridPos.w * p.gridPos.h, p.title).toBeGreaterThan(0);
    }
    for (const [i, a] of panels.entries()) {
      for (const b of panels.slice(i + 1)) {
        const overlap =
          a.gridPos.x < b.gridPos.x + b.gridPos.w && b.gridPos.x < a.gridPos.x + a.gridPos.w &&
          a.gridPos.y < b.gridPos.y + b.gridPos.h && b.gridPos.y < a.gridPos.y + a.gridPos.h;
        expect(overlap, `"${a.title}" overlaps "${b.title}"`).toBe(false);
      }
    }
  });

  it('gives every panel at least one query, with distinct refIds', () => {
    for (const p of queryPanels(d)) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.expr?.trim(), p.title).toBeTruthy();
      const refIds = p.targets!.map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
    }
  });

  it('queries the provisioned data source by uid, everywhere', () => {
    for (const p of queryPanels(d)) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: DS_UID });
      for (const t of p.targets!) expect(t.datasource, p.title).toEqual({ type: 'prometheus', uid: DS_UID });
    }
    for (const v of d.templating.list.filter((x) => x.type === 'query')) expect(v.datasource?.uid, v.name).toBe(DS_UID);
  });

  it('uses only metrics the services export (or recorded series), with their labels', () => {
    const problems = exprsOf(d).flatMap(({ panel, expr }) => {
      const c = checkExpr(expr, recorded);
      const none = c.metrics.length === 0 ? ['selects no metric'] : [];
      return [...c.problems, ...none].map((p) => `${panel}: ${p}`);
    });
    expect(problems).toEqual([]);
  });

  it('names in legends only labels the query keeps', () => {
    for (const { panel, expr, legend } of exprsOf(d)) {
      const { resultLabels } = checkExpr(expr, recorded);
      if (!resultLabels || !legend) continue;
      for (const m of legend.matchAll(/\{\{\s*(\w+)\s*\}\}/g)) {
        expect(resultLabels.has(m[1]!), `${panel}: legend {{${m[1]}}} not in by (${[...resultLabels].join(',')})`).toBe(true);
      }
    }
  });

  it('defines every variable it uses, over exported metrics', () => {
    const defined = new Set(d.templating.list.map((v) => v.name));
    for (const { panel, expr } of exprsOf(d)) {
      for (const m of expr.matchAll(/\$\{?(\w+)/g)) {
        expect(defined.has(m[1]!) || GRAFANA_BUILTINS.has(m[1]!), `${panel}: $${m[1]} undefined`).toBe(true);
      }
    }
    for (const v of d.templating.list.filter((x) => x.type === 'query')) {
      const q = typeof v.query === 'string' ? v.query : v.query.query;
      const parsed = parseGrafanaVariableQuery(q);
      expect(parsed?.label, v.name).toBeTruthy();
      const c = checkExpr(`sum by (${parsed!.label}) (${parsed!.selector})`, recorded);
      expect(c.problems, v.name).toEqual([]);
    }
  });
});

describe('dashboards together', () => {
  it('parse as PromQL (promtool, Grafana variables substituted)', () => {
    const rules = dashboards.flatMap(({ json }) => exprsOf(json)).map(({ expr }, i) => ({
      record: `dashboard_expr_${i}`,
      expr: substituteGrafanaVariables(expr),
    }));
    const dir = mkdtempSync(join(tmpdir(), 'actionedx-dash-'));
    const file = join(dir, 'dashboards.rules.yml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboards', rules }] }));
    const r = promtool(['check', 'rules', file]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('cover what each dashboard is for', () => {
    const used = (uid: string) => {
      const d = dashboards.find((x) => x.json.uid === uid)!.json;
      return new Set(exprsOf(d).flatMap(({ expr }) => checkExpr(expr, recorded).metrics));
    };
    expect([...used('actionedx-ai')]).toEqual(
      expect.arrayContaining([
        'ai_requests_total', 'ai_request_latency_seconds_bucket', 'ai_time_to_first_token_seconds_bucket',
        'ai_tokens_used_total', 'ai_cost_usd_total', 'ai_response_quality_score',
      ]),
    );
    expect([...used('actionedx-cache')]).toEqual(
      expect.arrayContaining(['cache_operations_total', 'cache_keys_total', 'cache_size_bytes', 'cache_lookup_latency_seconds_bucket', 'cache_breaker_open']),
    );
    expect([...used('actionedx-websocket')]).toEqual(
      expect.arrayContaining(['websocket_active_connections', 'websocket_messages_total', 'websocket_errors_total']),
    );
    expect([...used('actionedx-jobs')]).toEqual(
      expect.arrayContaining([
        'jobs_queue_depth', 'jobs_duration_seconds_bucket', 'jobs_step_duration_seconds_bucket', 'jobs_failures_total', 'jobs_retries_total',
      ]),
    );
    expect([...used('actionedx-health')]).toEqual(
      expect.arrayContaining([
        'service_health', 'bus_request_roundtrip_seconds_bucket', 'bus_request_retries_total', 'gateway_requests_in_flight',
        'ai_requests_in_flight', 'process_cpu_seconds_total', 'process_resident_memory_bytes',
      ]),
    );
  });

  it('with the rules, use every metric listed in exported-metrics.ts (the list holds nothing unused)', () => {
    const used = new Set([
      ...dashboards.flatMap(({ json }) => exprsOf(json)).flatMap(({ expr }) => checkExpr(expr, recorded).metrics),
      ...loadRules().flatMap((r) => checkExpr(r.expr, recorded).metrics),
    ]);
    const unused = Object.values(EXPORTED_METRICS)
      .flatMap((metrics) => Object.entries(metrics))
      .filter(([name, spec]) => !seriesNames(name, spec).some((s) => used.has(s)))
      .map(([name]) => name);
    expect([...new Set(unused)]).toEqual([]);
  });
});
