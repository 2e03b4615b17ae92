import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { kubectlPath, listFiles, readText, readYaml, readYamlDocuments, repoPath, run } from './support.js';

const YAML_FILES = listFiles('k8s', (p) => /\.ya?ml$/.test(p));
const KUSTOMIZATIONS = YAML_FILES.filter((f) => f.endsWith('/kustomization.yaml'));
const MANIFESTS = YAML_FILES.filter((f) => !f.endsWith('/kustomization.yaml') && !f.includes('/files/'));
const docs = MANIFESTS.flatMap((file) => readYamlDocuments(file).map((doc) => ({ file, doc })));
const deployments = docs.filter(({ doc }) => doc.kind === 'Deployment');
const APP_IMAGE = 'actionedx/platform';
const isApp = (d: any) => d.spec.template.spec.containers.some((c: any) => c.image === APP_IMAGE);
const byKindName = (kind: string, name: string) => docs.find(({ doc }) => doc.kind === kind && doc.metadata.name === name)?.doc;

describe('k8s YAML', () => {
  it('parses, every document of every file, as Kubernetes objects', () => {
    expect(YAML_FILES.length).toBeGreaterThan(10);
    for (const file of YAML_FILES.filter((f) => !f.includes('/files/'))) {
      const parsed = readYamlDocuments(file);
      expect(parsed.length, file).toBeGreaterThan(0);
      for (const d of parsed) {
        expect(d.apiVersion, file).toBeTruthy();
        expect(d.kind, file).toBeTruthy();
        if (d.kind !== 'Kustomization') expect(d.metadata?.name, file).toBeTruthy();
      }
    }
    // the copies in k8s/monitoring/files are plain YAML too
    for (const file of YAML_FILES.filter((f) => f.includes('/files/'))) {
      for (const d of parseAllDocuments(readText(file)) as any[]) expect(d.errors, file).toEqual([]);
    }
  });

  it('has the base: namespace, config, the three services, their Services, PDBs and HPAs', () => {
    const base = docs.filter(({ file }) => file.startsWith('k8s/base/') && !file.includes('template')).map(({ doc }) => `${doc.kind}/${doc.metadata.name}`);
    expect(base.sort()).toEqual(
      [
        'Namespace/actionedx',
        'Deployment/gateway', 'Service/gateway', 'PodDisruptionBudget/gateway', 'HorizontalPodAutoscaler/gateway',
        'Deployment/orchestrator', 'Service/orchestrator', 'PodDisruptionBudget/orchestrator', 'HorizontalPodAutoscaler/orchestrator',
        'Deployment/mock-llm', 'Service/mock-llm',
      ].sort(),
    );
    expect(byKindName('Deployment', 'gateway').spec.replicas).toBe(2);
    expect(byKindName('Deployment', 'orchestrator').spec.replicas).toBe(3);
  });
});

describe.each(deployments.map(({ file, doc }) => ({ name: `${file} ${doc.metadata.name}`, file, doc })))('Deployment $name', ({ doc }) => {
  const pod = doc.spec.template;

  it('selects its own pods', () => {
    for (const [k, v] of Object.entries(doc.spec.selector.matchLabels)) expect(pod.metadata.labels[k]).toBe(v);
    expect(pod.metadata.labels['app.kubernetes.io/name']).toBe(doc.metadata.name);
  });

  it('probes readiness and liveness, and sets resource requests and limits, on every container', () => {
    for (const c of pod.spec.containers) {
      expect(c.readinessProbe, c.name).toBeDefined();
      expect(c.livenessProbe, c.name).toBeDefined();
      for (const kind of ['requests', 'limits']) {
        expect(c.resources?.[kind]?.cpu, `${c.name} ${kind}.cpu`).toBeTruthy();
        expect(c.resources?.[kind]?.memory, `${c.name} ${kind}.memory`).toBeTruthy();
      }
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean)) {
        const port = probe.httpGet?.port ?? probe.tcpSocket?.port;
        if (typeof port === 'string') expect(c.ports.map((p: any) => p.name), `${c.name} probe port ${port}`).toContain(port);
      }
    }
  });

});

const appDeployments = deployments.filter(({ doc }) => isApp(doc));

describe.each(appDeployments.map(({ doc }) => ({ name: doc.metadata.name, doc })))('service Deployment $name', ({ doc }) => {
  const pod = doc.spec.template;

  it('asks Prometheus to scrape its metrics port, and runs its role from the one image', () => {
    const a = pod.metadata.annotations ?? {};
    const c = pod.spec.containers[0];
    expect(a['prometheus.io/scrape']).toBe('true');
    expect(a['prometheus.io/path']).toBe('/metrics');
    expect(c.ports.map((p: any) => String(p.containerPort))).toContain(a['prometheus.io/port']);
    // The port /metrics is served on: OPS_PORT where the service has one apart from its public port (the gateway).
    const metricsPort = c.env.find((e: any) => e.name === 'OPS_PORT') ?? c.env.find((e: any) => e.name === 'PORT');
    expect(metricsPort?.value).toBe(a['prometheus.io/port']);
    expect(c.args).toEqual([`services/${doc.metadata.name}/dist/main.js`]);
    expect(existsSync(repoPath(`services/${doc.metadata.name}/package.json`))).toBe(true);
  });

  it('runs unprivileged with a read-only root file system', () => {
    expect(pod.spec.securityContext.runAsNonRoot).toBe(true);
    for (const c of pod.spec.containers) {
      expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    }
  });

  it('is ready on /readyz (gateway, orchestrator; the dependency-free mock: /healthz) and alive on /healthz', () => {
    const c = pod.spec.containers[0];
    expect(c.readinessProbe.httpGet.path).toBe(doc.metadata.name === 'mock-llm' ? '/healthz' : '/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
  });
});

describe('k8s wiring', () => {
  it('runs the three services from the platform image', () => {
    expect(appDeployments.map(({ doc }) => doc.metadata.name).sort()).toEqual(['gateway', 'mock-llm', 'orchestrator']);
  });

  it('gives gateway and orchestrator a CPU autoscaler and a disruption budget over their own pods', () => {
    for (const name of ['gateway', 'orchestrator']) {
      const d = byKindName('Deployment', name);
      const hpa = byKindName('HorizontalPodAutoscaler', name);
      expect(hpa.apiVersion).toBe('autoscaling/v2');
      expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name });
      expect(hpa.spec.metrics[0].resource.name).toBe('cpu');
      expect(hpa.spec.minReplicas).toBe(d.spec.replicas);
      expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
      const pdb = byKindName('PodDisruptionBudget', name);
      expect(pdb.apiVersion).toBe('policy/v1');
      expect(pdb.spec.selector.matchLabels).toEqual(d.spec.selector.matchLabels);
    }
  });

  it('points every Service at pods that exist, on a port they declare', () => {
    for (const { file, doc } of docs.filter(({ doc }) => doc.kind === 'Service')) {
      const target = deployments.find(({ doc: d }) =>
        Object.entries(doc.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v),
      );
      expect(target, `${file} Service/${doc.metadata.name}`).toBeDefined();
      const ports = target!.doc.spec.template.spec.containers.flatMap((c: any) => c.ports);
      for (const p of doc.spec.ports) {
        const ok = ports.some((cp: any) => cp.name === p.targetPort || cp.containerPort === p.targetPort);
        expect(ok, `${doc.metadata.name}:${p.targetPort}`).toBe(true);
      }
    }
  });

  it('keeps the gateway’s metrics and probes on its ops port, out of its Service, and gives it credentials from the Secret', () => {
    const d = byKindName('Deployment', 'gateway');
    const c = d.spec.template.spec.containers[0];
    expect(c.ports).toEqual(expect.arrayContaining([{ name: 'http', containerPort: 8001 }, { name: 'ops', containerPort: 9464 }]));
    for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) expect(probe.httpGet.port).toBe('ops');
    expect(byKindName('Service', 'gateway').spec.ports.map((p: any) => p.targetPort)).toEqual(['http']);
    for (const name of ['JWT_SECRET', 'ADMIN_API_KEY']) {
      expect(c.env.find((e: any) => e.name === name).valueFrom.secretKeyRef).toMatchObject({ name: 'actionedx-secrets', key: name });
    }
  });

  it('configures the services for the in-cluster NATS, Redis, MongoDB and mock LLM', () => {
    const env = Object.fromEntries(
      readText('k8s/base/config.env').split('\n').filter((l) => l.includes('=')).map((l) => l.split(/=(.*)/s).slice(0, 2)),
    );
    expect(env).toMatchObject({
      NATS_URL: 'nats://nats:4222',
      REDIS_URL: 'redis://redis:6379/0',
      MONGO_URL: 'mongodb://mongo:27017',
      OPENAI_BASE_URL: 'http://mock-llm:8090/v1',
      HOST: '0.0.0.0',
    });
    const orchestrator = byKindName('Deployment', 'orchestrator').spec.template.spec.containers[0];
    expect(orchestrator.env.find((e: any) => e.name === 'OPENAI_API_KEY').valueFrom.secretKeyRef).toEqual({ name: 'actionedx-secrets', key: 'OPENAI_API_KEY' });
    const mock = byKindName('Deployment', 'mock-llm').spec.template.spec.containers[0];
    expect(mock.env.find((e: any) => e.name === 'HOST')?.value).toBe('0.0.0.0');
  });

  it('keeps secrets out: templates only, with placeholders, never listed as resources', () => {
    const templates = YAML_FILES.filter((f) => f.includes('template'));
    expect(templates.sort()).toEqual(['k8s/base/secret.template.yaml', 'k8s/monitoring/grafana-admin.template.yaml']);
    for (const t of templates) {
      const secret = readYaml(t);
      expect(secret.kind).toBe('Secret');
      for (const v of Object.values(secret.stringData) as string[]) expect(v).not.toMatch(/sk-[A-Za-z0-9_-]{16,}/);
      for (const k of KUSTOMIZATIONS) expect(readYaml(k).resources ?? [], k).not.toContain(t.split('/').pop());
    }
    expect(readYaml('k8s/base/secret.template.yaml').stringData.OPENAI_API_KEY).toMatch(/^<.*>$/);
  });

  it('sets replicas and image tags in the overlays', () => {
    const dev = readYaml('k8s/overlays/dev/kustomization.yaml');
    const prod = readYaml('k8s/overlays/prod/kustomization.yaml');
    for (const o of [dev, prod]) {
      expect(o.images[0].name).toBe(APP_IMAGE);
      expect(o.images[0].newTag).toBeTruthy();
      expect(o.replicas.map((r: any) => r.name).sort()).toEqual(['gateway', 'orchestrator']);
    }
    expect(prod.images[0].newTag).toBe(JSON.parse(readText('package.json')).version);
  });
});

describe('kustomizations', () => {
  it.each(KUSTOMIZATIONS)('%s refers only to files and directories that exist inside it', (file) => {
    const dir = dirname(repoPath(file));
    const k = readYaml(file);
    for (const r of k.resources ?? []) {
      const p = join(dir, r);
      expect(existsSync(p), `${file}: ${r}`).toBe(true);
      if (statSync(p).isDirectory()) expect(existsSync(join(p, 'kustomization.yaml')), `${file}: ${r}`).toBe(true);
    }
    for (const g of [...(k.configMapGenerator ?? []), ...(k.secretGenerator ?? [])]) {
      for (const entry of [...(g.files ?? []), ...(g.envs ?? [])]) {
        const path = String(entry).split('=').pop()!;
        // kustomize's default load restrictor: generator files must be below the kustomization
        expect(normalize(path).startsWith('..'), `${file}: ${path} is outside`).toBe(false);
        expect(existsSync(join(dir, path)), `${file}: ${path}`).toBe(true);
      }
    }
  });

  it('k8s/monitoring/files are identical copies of monitoring/ (run k8s/monitoring/sync-files.sh)', () => {
    const copies: Record<string, string> = {
      'k8s/monitoring/files/prometheus.yml': 'monitoring/prometheus/prometheus.k8s.yml',
      'k8s/monitoring/files/actionedx.rules.yml': 'monitoring/prometheus/rules/actionedx.rules.yml',
      'k8s/monitoring/files/grafana-datasources.yml': 'monitoring/grafana/provisioning/datasources/prometheus.yml',
      'k8s/monitoring/files/grafana-dashboards.yml': 'monitoring/grafana/provisioning/dashboards/dashboards.yml',
    };
    for (const d of listFiles('monitoring/grafana/dashboards', (p) => p.endsWith('.json'))) {
      copies[`k8s/monitoring/files/dashboards/${d.split('/').pop()}`] = d;
    }
    for (const [copy, source] of Object.entries(copies)) {
      expect(existsSync(repoPath(copy)), `${copy} missing`).toBe(true);
      expect(readFileSync(repoPath(copy), 'utf8') === readText(source), `${copy} differs from ${source}`).toBe(true);
    }
    expect(listFiles('k8s/monitoring/files').sort()).toEqual(Object.keys(copies).sort());
    // and every dashboard is in the ConfigMap
    const gen = readYaml('k8s/monitoring/kustomization.yaml').configMapGenerator.find((g: any) => g.name === 'grafana-dashboards');
    expect(gen.files.sort()).toEqual(Object.keys(copies).filter((c) => c.endsWith('.json')).map((c) => c.replace('k8s/monitoring/', '')).sort());
  });

  it('runs Prometheus with 30 days of retention and its rules beside its config', () => {
    const p = byKindName('Deployment', 'prometheus').spec.template.spec;
    expect(p.containers[0].args).toContain('--storage.tsdb.retention.time=30d');
    expect(p.containers[0].args).toContain('--config.file=/etc/prometheus/prometheus.yml');
    const sources = p.volumes.find((v: any) => v.name === 'config').projected.sources;
    expect(sources.flatMap((s: any) => s.configMap.items.map((i: any) => i.path))).toEqual(['prometheus.yml', 'rules/actionedx.rules.yml']);
    expect(p.serviceAccountName).toBe('prometheus');
    const role = byKindName('Role', 'prometheus-discovery');
    expect(role.rules[0]).toEqual({ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] });
  });

  const kubectl = kubectlPath();
  const render = (dir: string) => {
    const r = run(kubectl!, ['kustomize', repoPath(dir)]);
    expect(r.status, r.output).toBe(0);
    return parseAllDocuments(r.output).map((d) => d.toJS());
  };

  it.skipIf(!kubectl)('render with kubectl kustomize (skipped without kubectl)', () => {
    for (const dir of ['k8s/base', 'k8s/monitoring', 'k8s/overlays/dev', 'k8s/overlays/prod']) render(dir);
  });

  it.skipIf(!kubectl)('dev runs everything; prod drops the mock LLM and talks to OpenAI', () => {
    const dev = render('k8s/overlays/dev');
    const names = (list: any[], kind: string) => list.filter((d) => d.kind === kind).map((d) => d.metadata.name).sort();
    expect(names(dev, 'Deployment')).toEqual(['gateway', 'grafana', 'mock-llm', 'mongo', 'nats', 'orchestrator', 'prometheus', 'redis']);
    expect(dev.find((d) => d.metadata.name === 'orchestrator' && d.kind === 'Deployment').spec.replicas).toBe(2);
    const prod = render('k8s/overlays/prod');
    expect(names(prod, 'Deployment')).toEqual(['gateway', 'orchestrator']);
    expect(names(prod, 'Service')).toEqual(['gateway', 'orchestrator']);
    const config = prod.find((d) => d.kind === 'ConfigMap');
    expect(config.data.OPENAI_BASE_URL).toBe('https://api.openai.com/v1');
    const gw = prod.find((d) => d.kind === 'Deployment' && d.metadata.name === 'gateway');
    expect(gw.spec.template.spec.containers[0].image).toBe(`${APP_IMAGE}:${JSON.parse(readText('package.json')).version}`);
    // generated names are wired through (hash suffixes)
    expect(gw.spec.template.spec.containers[0].envFrom[0].configMapRef.name).toBe(config.metadata.name);
    for (const hpa of prod.filter((d) => d.kind === 'HorizontalPodAutoscaler')) {
      const d = prod.find((x) => x.kind === 'Deployment' && x.metadata.name === hpa.metadata.name);
      expect(hpa.spec.minReplicas).toBe(d.spec.replicas);
    }
  });
});
