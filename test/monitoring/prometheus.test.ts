import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { relabel, targetFromDiscovery, type RelabelConfig } from './relabel.js';
import { checkExpr, loadRules, promtool, readText, readYaml, readYamlDocuments, recordedNames, repoPath } from './support.js';

const COMPOSE_CONFIG = 'monitoring/prometheus/prometheus.yml';
const K8S_CONFIG = 'monitoring/prometheus/prometheus.k8s.yml';
const RULES = 'monitoring/prometheus/rules/actionedx.rules.yml';
const RULE_TESTS = 'monitoring/prometheus/tests/actionedx.rules.test.yml';

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  static_configs?: { targets: string[] }[];
  dns_sd_configs?: { names: string[]; type?: string; port?: number }[];
  kubernetes_sd_configs?: { role: string; namespaces?: { own_namespace?: boolean; names?: string[] } }[];
  relabel_configs?: RelabelConfig[];
}
interface PromConfig {
  global: { scrape_interval: string; evaluation_interval?: string };
  rule_files: string[];
  scrape_configs: ScrapeConfig[];
}

describe('promtool', () => {
  it('accepts the docker-compose config, with its rule files', () => {
    const r = promtool(['check', 'config', COMPOSE_CONFIG]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/SUCCESS: 1 rule files found/);
  });

  it('accepts the Kubernetes config', () => {
    const r = promtool(['check', 'config', K8S_CONFIG]);
    if (r.status === 0) return;
    // Debian's prometheus package is built without Kubernetes discovery: check everything else by
    // swapping the discovery block for a static target (its shape is checked in the next block).
    expect(r.output, r.output).toMatch(/field kubernetes_sd_configs not found/);
    const config = readYaml<PromConfig>(K8S_CONFIG);
    for (const sc of config.scrape_configs) {
      if (sc.kubernetes_sd_configs) {
        delete sc.kubernetes_sd_configs;
        sc.static_configs = [{ targets: ['10.0.0.1:8001'] }];
      }
    }
    config.rule_files = config.rule_files.map((f) => repoPath('monitoring/prometheus', f));
    const dir = mkdtempSync(join(tmpdir(), 'actionedx-prom-'));
    const file = join(dir, 'prometheus.k8s.yml');
    writeFileSync(file, stringify(config));
    const r2 = promtool(['check', 'config', file]);
    rmSync(dir, { recursive: true, force: true });
    expect(r2.status, r2.output).toBe(0);
    expect(r2.output).toMatch(/SUCCESS: 1 rule files found/);
  });

  it('accepts the rules', () => {
    const r = promtool(['check', 'rules', RULES]);
    expect(r.status, r.output).toBe(0);
  });

  it('passes the alerting unit tests (monitoring/prometheus/tests)', () => {
    const r = promtool(['test', 'rules', RULE_TESTS]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/SUCCESS/);
  });
});

describe('docker-compose scrape config', () => {
  const config = readYaml<PromConfig>(COMPOSE_CONFIG);
  const compose = readYaml<{ services: Record<string, { environment?: Record<string, string>; expose?: string[] }> }>(
    'docker-compose.yml',
  );
  const job = (name: string) => config.scrape_configs.find((s) => s.job_name === name);

  it('scrapes every 10 s and loads the rules directory', () => {
    expect(config.global.scrape_interval).toBe('10s');
    expect(config.rule_files).toEqual(['rules/*.yml']);
  });

  it('scrapes prometheus, gateway, every orchestrator replica and mock-llm', () => {
    expect(job('prometheus')?.static_configs?.[0]?.targets).toEqual(['localhost:9090']);
    // The gateway's metrics are on its ops port, not the public 8001.
    expect(job('gateway')?.static_configs?.[0]?.targets).toEqual(['gateway:9464']);
    expect(job('mock-llm')?.static_configs?.[0]?.targets).toEqual(['mock-llm:8090']);
    // one A record per replica of the compose service
    expect(job('orchestrator')?.dns_sd_configs).toEqual([{ names: ['orchestrator'], type: 'A', port: 8002, refresh_interval: '15s' }]);
  });

  it('targets only compose services, on the ports they listen on', () => {
    const ports: Record<string, string> = {
      prometheus: '9090', grafana: '3000', 'nats-exporter': '7777', 'redis-exporter': '9121',
    };
    for (const sc of config.scrape_configs) {
      const targets = [
        ...(sc.static_configs ?? []).flatMap((s) => s.targets),
        ...(sc.dns_sd_configs ?? []).flatMap((d) => d.names.map((n) => `${n}:${d.port}`)),
      ];
      expect(targets.length, sc.job_name).toBeGreaterThan(0);
      for (const t of targets) {
        const [host, port] = t.split(':') as [string, string];
        if (host === 'localhost') continue;
        const service = compose.services[host];
        expect(service, `${sc.job_name}: ${host} is not a compose service`).toBeDefined();
        const expected = service?.environment?.OPS_PORT ?? service?.environment?.PORT ?? ports[host];
        expect(port, `${sc.job_name}: ${t}`).toBe(expected);
      }
    }
  });
});

describe('Kubernetes scrape config', () => {
  const config = readYaml<PromConfig>(K8S_CONFIG);
  const pods = config.scrape_configs.find((s) => s.kubernetes_sd_configs);
  const meta = (s: string) => s.replace(/[^a-zA-Z0-9_]/g, '_');

  /** The discovery labels Prometheus gives a pod's container port. */
  function discovered(pod: {
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    name: string;
    container: string;
    port?: number;
    phase?: string;
  }) {
    const out: Record<string, string> = {
      __address__: pod.port ? `10.1.2.3:${pod.port}` : '10.1.2.3',
      __meta_kubernetes_namespace: 'actionedx',
      __meta_kubernetes_pod_name: pod.name,
      __meta_kubernetes_pod_node_name: 'node-1',
      __meta_kubernetes_pod_container_name: pod.container,
      __meta_kubernetes_pod_phase: pod.phase ?? 'Running',
    };
    for (const [k, v] of Object.entries(pod.annotations ?? {})) out[`__meta_kubernetes_pod_annotation_${meta(k)}`] = v;
    for (const [k, v] of Object.entries(pod.labels ?? {})) out[`__meta_kubernetes_pod_label_${meta(k)}`] = v;
    return out;
  }

  it('discovers pods in its own namespace and loads the same rules, every 10 s', () => {
    expect(pods?.kubernetes_sd_configs).toEqual([{ role: 'pod', namespaces: { own_namespace: true } }]);
    expect(config.rule_files).toEqual(['rules/*.yml']);
    expect(config.global.scrape_interval).toBe('10s');
  });

  it('scrapes every annotated pod of k8s/ on its annotated port and path, with job = app name', () => {
    const deployments = ['k8s/base', 'k8s/monitoring']
      .flatMap((dir) => readdirSync(repoPath(dir)).filter((f) => /\.ya?ml$/.test(f) && !f.includes('template') && f !== 'kustomization.yaml').map((f) => `${dir}/${f}`))
      .flatMap((f) => readYamlDocuments(f))
      .filter((d) => d.kind === 'Deployment');
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(['gateway', 'grafana', 'job-worker', 'mock-llm', 'orchestrator', 'prometheus']);
    for (const d of deployments) {
      const tpl = d.spec.template;
      const container = tpl.spec.containers[0];
      const annotations = tpl.metadata.annotations as Record<string, string>;
      const target = targetFromDiscovery(
        pods!.job_name,
        discovered({
          annotations,
          labels: tpl.metadata.labels,
          name: `${d.metadata.name}-5d8f7-abcde`,
          container: container.name,
          port: container.ports[0].containerPort,
        }),
        pods!.relabel_configs!,
      );
      expect(target, d.metadata.name).toBeDefined();
      expect(target!.url).toBe(`http://10.1.2.3:${annotations['prometheus.io/port']}${annotations['prometheus.io/path'] ?? '/metrics'}`);
      expect(target!.labels).toEqual({
        job: d.metadata.name,
        instance: `10.1.2.3:${annotations['prometheus.io/port']}`,
        namespace: 'actionedx',
        pod: `${d.metadata.name}-5d8f7-abcde`,
        node: 'node-1',
        container: container.name,
      });
    }
  });

  it('does not set a `service` target label (it would rename the services\' own to exported_service)', () => {
    const targets = (pods?.relabel_configs ?? []).map((c) => c.target_label);
    expect(targets).not.toContain('service');
  });

  it('skips pods that do not opt in, and pods not running', () => {
    const base = { labels: { 'app.kubernetes.io/name': 'gateway' }, name: 'x', container: 'x', port: 8001 };
    expect(targetFromDiscovery('k', discovered(base), pods!.relabel_configs!)).toBeUndefined();
    expect(
      targetFromDiscovery('k', discovered({ ...base, annotations: { 'prometheus.io/scrape': 'false' } }), pods!.relabel_configs!),
    ).toBeUndefined();
    expect(
      targetFromDiscovery(
        'k',
        discovered({ ...base, phase: 'Pending', annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8001' } }),
        pods!.relabel_configs!,
      ),
    ).toBeUndefined();
  });

  it('uses the annotated port even for a pod that declares no port', () => {
    const t = targetFromDiscovery(
      'kubernetes-pods',
      discovered({ name: 'p', container: 'c', annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9999' } }),
      pods!.relabel_configs!,
    );
    expect(t?.url).toBe('http://10.1.2.3:9999/metrics');
    expect(t?.labels.job).toBe('kubernetes-pods');
  });

  it('relabel simulator: keep, drop and replace behave as in Prometheus', () => {
    expect(relabel({ a: 'x' }, [{ source_labels: ['a'], regex: 'y', action: 'keep' }])).toBeUndefined();
    expect(relabel({ a: 'x' }, [{ source_labels: ['a'], regex: 'x', action: 'drop' }])).toBeUndefined();
    expect(relabel({ a: '1.2.3.4:80', p: '90' }, [{ source_labels: ['a', 'p'], regex: '([^:]+)(?::\\d+)?;(\\d+)', replacement: '$1:$2', target_label: 'a' }])).toEqual({ a: '1.2.3.4:90', p: '90' });
    // no match: unchanged
    expect(relabel({ a: 'x' }, [{ source_labels: ['b'], regex: '(.+)', target_label: 'a' }])).toEqual({ a: 'x' });
  });
});

describe('rules', () => {
  const rules = loadRules(RULES);
  const recorded = recordedNames();

  it('use only metrics the services export (or series recorded here), with their labels', () => {
    const problems = rules.flatMap((r) => checkExpr(r.expr, recorded).problems.map((p) => `${r.record ?? r.alert}: ${p}`));
    expect(problems).toEqual([]);
  });

  it('name recorded series level:metric:operations', () => {
    for (const name of recorded) expect(name).toMatch(/^[a-z_]*:[a-z0-9_]+:[a-z0-9_]+$/);
  });

  it('have the alerts operators need', () => {
    const alerts = rules.flatMap((r) => (r.alert ? [r.alert] : []));
    expect(alerts).toEqual(
      expect.arrayContaining([
        'AIHighErrorRate',
        'AILatencyP95High',
        'CacheHitRateCollapse',
        'NoOrchestratorAnswering',
        'CacheBreakerOpen',
        'WebSocketErrorSpike',
        'ServiceDown',
      ]),
    );
    expect(new Set(alerts).size).toBe(alerts.length);
  });

  it('give every alert a severity, a summary and a description', () => {
    for (const r of rules.filter((x) => x.alert)) {
      expect(['critical', 'warning'], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.description, r.alert).toBeTruthy();
    }
  });

  it('template only labels an alert carries', () => {
    for (const r of rules.filter((x) => x.alert)) {
      const used = [...JSON.stringify(r.annotations).matchAll(/\$labels\.(\w+)/g)].map((m) => m[1]!);
      const { resultLabels, metrics } = checkExpr(r.expr, recorded);
      // labels of a recorded series: the `by` labels of the rule recording it
      const fromRecorded = metrics
        .map((m) => rules.find((x) => x.record === m))
        .flatMap((x) => (x ? [...(checkExpr(x.expr, recorded).resultLabels ?? [])] : []));
      const known = new Set([...(resultLabels ?? []), ...fromRecorded]);
      if (known.size === 0) continue; // no aggregation: every label of the selected series is kept
      for (const l of used) expect(known.has(l), `${r.alert} uses $labels.${l}`).toBe(true);
    }
  });

  it('state retention (30 days) as the flag it is, in both configs', () => {
    for (const f of [COMPOSE_CONFIG, K8S_CONFIG]) expect(readText(f)).toContain('--storage.tsdb.retention.time=30d');
  });
});
