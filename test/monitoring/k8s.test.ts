import { existsSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { WorkQueueNames } from '@actionedx/shared';
import { kubectlPath, listFiles, readText, readYaml, readYamlDocuments, repoPath, run } from './support.js';
import { validateK8sObject } from './k8s-schemas.js';

const YAML_FILES = listFiles('k8s', (p) => /\.ya?ml$/.test(p));
/** monitoring/kustomization.yaml generates the monitoring ConfigMaps from the files beside it (their one copy). */
const MONITORING_FILES = 'monitoring/kustomization.yaml';
const KUSTOMIZATIONS = [...YAML_FILES.filter((f) => f.endsWith('/kustomization.yaml')), MONITORING_FILES];
const MANIFESTS = YAML_FILES.filter((f) => !f.endsWith('/kustomization.yaml'));
const docs = MANIFESTS.flatMap((file) => readYamlDocuments(file).map((doc) => ({ file, doc })));
const deployments = docs.filter(({ doc }) => doc.kind === 'Deployment');
const APP_IMAGE = 'actionedx/platform';
const isApp = (d: any) => d.spec.template.spec.containers.some((c: any) => c.image === APP_IMAGE);
const byKindName = (kind: string, name: string) => docs.find(({ doc }) => doc.kind === kind && doc.metadata.name === name)?.doc;
/** The service a Deployment runs: its own name, except the job workers (the orchestrator with ROLE=jobs). */
const serviceOf = (deployment: string) => (deployment === 'job-worker' ? 'orchestrator' : deployment);

describe('k8s YAML', () => {
  it('parses, every document of every file, as Kubernetes objects', () => {
    expect(YAML_FILES.length).toBeGreaterThan(10);
    for (const file of [...YAML_FILES, MONITORING_FILES]) {
      const parsed = readYamlDocuments(file);
      expect(parsed.length, file).toBeGreaterThan(0);
      for (const d of parsed) {
        expect(d.apiVersion, file).toBeTruthy();
        expect(d.kind, file).toBeTruthy();
        if (d.kind !== 'Kustomization' && d.kind !== 'Component') expect(d.metadata?.name, file).toBeTruthy();
      }
    }
  });

  it('has the base: namespace, config, the three services and the job workers, their Services, PDBs, scalers, Ingress and NetworkPolicies', () => {
    const base = docs.filter(({ file }) => file.startsWith('k8s/base/') && !file.includes('template')).map(({ doc }) => `${doc.kind}/${doc.metadata.name}`);
    expect(base.sort()).toEqual(
      [
        'Namespace/actionedx',
        'Deployment/gateway', 'Service/gateway', 'PodDisruptionBudget/gateway', 'HorizontalPodAutoscaler/gateway',
        'Deployment/orchestrator', 'Service/orchestrator', 'PodDisruptionBudget/orchestrator', 'ScaledObject/orchestrator',
        'Deployment/job-worker', 'PodDisruptionBudget/job-worker',
        'Deployment/mock-llm', 'Service/mock-llm',
        'Ingress/gateway', 'NetworkPolicy/gateway', 'NetworkPolicy/orchestrator', 'NetworkPolicy/mock-llm',
      ].sort(),
    );
    expect(byKindName('Deployment', 'gateway').spec.replicas).toBe(2);
    expect(byKindName('Deployment', 'orchestrator').spec.replicas).toBe(3);
  });
});

describe('k8s schemas (offline: kubernetes-models, @kubernetes-models/keda and prometheus-operator)', () => {
  it('validates every object of every manifest against its Kubernetes, KEDA or Prometheus Operator schema', async () => {
    const objects = docs.filter(({ doc }) => doc.kind !== 'Kustomization' && doc.kind !== 'Component');
    expect(objects.map(({ doc }) => doc.kind)).toEqual(expect.arrayContaining(['Deployment', 'ScaledObject', 'PodMonitor', 'Ingress', 'NetworkPolicy']));
    for (const { file, doc } of objects) expect(await validateK8sObject(doc), `${file}: ${doc.kind}/${doc.metadata.name}`).toBe('valid');
  });

  it('finds mistakes: a bad ScaledObject and a bad Deployment are refused', async () => {
    expect(await validateK8sObject({ apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject', metadata: { name: 'x' }, spec: { triggers: 'nats' } })).toMatch(/scaleTargetRef|triggers/);
    expect(await validateK8sObject({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { replicas: 'two' } })).toMatch(/selector|template|replicas/);
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
    expect(c.args).toEqual([`services/${serviceOf(doc.metadata.name)}/dist/main.js`]);
    expect(existsSync(repoPath(`services/${serviceOf(doc.metadata.name)}/package.json`))).toBe(true);
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
  it('runs the three services and the job workers from the platform image', () => {
    expect(appDeployments.map(({ doc }) => doc.metadata.name).sort()).toEqual(['gateway', 'job-worker', 'mock-llm', 'orchestrator']);
  });

  it('runs the job workers with ROLE=jobs on the queue Redis, and scales them with KEDA on the BullMQ wait list', () => {
    const c = byKindName('Deployment', 'job-worker').spec.template.spec.containers[0];
    expect(c.env.find((e: any) => e.name === 'ROLE')?.value).toBe('jobs');
    expect(c.env.find((e: any) => e.name === 'JOB_WEBHOOK_SECRET').valueFrom.secretKeyRef).toMatchObject({ name: 'actionedx-secrets', optional: true });
    expect(readText('k8s/base/config.env')).toMatch(/^QUEUE_REDIS_URL=redis:\/\/queue-redis:6379\/0$/m);
    const queue = readYamlDocuments('k8s/overlays/dev/queue-redis.yaml').find((d) => d.kind === 'Deployment');
    expect(queue.spec.template.spec.containers[0].args.join(' ')).toContain('--maxmemory-policy noeviction');
    const scaled = byKindName('ScaledObject', 'job-worker');
    expect(scaled.apiVersion).toBe('keda.sh/v1alpha1');
    expect(scaled.spec.scaleTargetRef.name).toBe('job-worker');
    expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(scaled.spec.triggers[0]).toMatchObject({ type: 'redis', metadata: { listName: 'bull:actionedx-jobs:wait' } });
    expect(scaled.spec.triggers[0].metadata.address).toMatch(/^queue-redis\.actionedx\.svc\.cluster\.local:6379$/);
    // KEDA makes the autoscaler: no HPA of ours may fight it.
    expect(byKindName('HorizontalPodAutoscaler', 'job-worker')).toBeUndefined();
  });

  it('scales the gateway on CPU and the orchestrators on the work queue (KEDA), each with a disruption budget', () => {
    const gateway = byKindName('Deployment', 'gateway');
    const hpa = byKindName('HorizontalPodAutoscaler', 'gateway');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'gateway' });
    expect(hpa.spec.metrics[0].resource.name).toBe('cpu');
    expect(hpa.spec.minReplicas).toBe(gateway.spec.replicas);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    // KEDA owns the orchestrators' HPA: a second one would fight it.
    expect(byKindName('HorizontalPodAutoscaler', 'orchestrator')).toBeUndefined();
    const orchestrator = byKindName('Deployment', 'orchestrator');
    const so = byKindName('ScaledObject', 'orchestrator');
    expect(so.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'orchestrator' });
    expect(so.spec.minReplicaCount).toBe(orchestrator.spec.replicas);
    expect(so.spec.maxReplicaCount).toBeGreaterThan(so.spec.minReplicaCount);
    const trigger = so.spec.triggers[0];
    expect(trigger.type).toBe('nats-jetstream');
    expect(trigger.metadata).toMatchObject({ stream: WorkQueueNames.stream, consumer: WorkQueueNames.consumer });
    expect(trigger.metadata.natsServerMonitoringEndpoint).toMatch(/^nats\.actionedx\.svc\.cluster\.local:8222$/);
    const devNats = readYamlDocuments('k8s/overlays/dev/infra.yaml').find((d) => d.kind === 'Deployment' && d.metadata.name === 'nats');
    expect(devNats.spec.template.spec.containers[0].args).toEqual(expect.arrayContaining(['-js', '-m', '8222']));
    for (const name of ['gateway', 'orchestrator']) {
      const pdb = byKindName('PodDisruptionBudget', name);
      expect(pdb.apiVersion).toBe('policy/v1');
      expect(pdb.spec.selector.matchLabels).toEqual(byKindName('Deployment', name).spec.selector.matchLabels);
    }
  });

  it('gives every service time to drain: preStop + SHUTDOWN_GRACE_MS + 2 s fit in terminationGracePeriodSeconds', () => {
    for (const name of ['gateway', 'orchestrator']) {
      const pod = byKindName('Deployment', name).spec.template.spec;
      const c = pod.containers[0];
      const graceMs = Number(c.env.find((e: any) => e.name === 'SHUTDOWN_GRACE_MS')?.value);
      expect(graceMs, name).toBeGreaterThan(0);
      const sleep = c.lifecycle?.preStop?.exec?.command;
      const preStopS = sleep ? Number(sleep[1]) : 0;
      expect(preStopS + graceMs / 1000 + 2, name).toBeLessThanOrEqual(pod.terminationGracePeriodSeconds);
      // ... and not much more: the period is what the service really needs.
      expect(pod.terminationGracePeriodSeconds - (preStopS + graceMs / 1000 + 2), name).toBeLessThanOrEqual(10);
    }
  });

  it('routes chat, tasks, health, WebSockets, jobs, sessions and the page through the Ingress with long timeouts, never metrics or cache administration', () => {
    const ing = byKindName('Ingress', 'gateway');
    const a = ing.metadata.annotations;
    expect(Number(a['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(3600);
    expect(Number(a['nginx.ingress.kubernetes.io/proxy-send-timeout'])).toBeGreaterThanOrEqual(3600);
    expect(a['nginx.ingress.kubernetes.io/proxy-buffering']).toBe('off');
    const paths = ing.spec.rules.flatMap((r: any) => r.http.paths.map((p: any) => p.path));
    expect(paths).toEqual(expect.arrayContaining(['/api/assistant', '/ws/assistant', '/api/health']));
    for (const p of paths) expect(p).not.toMatch(/metrics|cache/);
    // The web page: `/` exactly (never a catch-all prefix) and its assets.
    const all = ing.spec.rules.flatMap((r: any) => r.http.paths);
    expect(all.filter((p: any) => p.path === '/').map((p: any) => p.pathType)).toEqual(['Exact']);
    expect(paths).toEqual(expect.arrayContaining(['/assets', '/api/jobs', '/api/sessions']));
  });

  it('keeps the orchestrators\' metrics port inside the cluster, and the mock LLM for the orchestrators only', () => {
    const orch = byKindName('NetworkPolicy', 'orchestrator');
    expect(orch.spec.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'orchestrator' });
    expect(orch.spec.ingress).toEqual([{ from: [{ namespaceSelector: {} }], ports: [{ port: 'http', protocol: 'TCP' }] }]);
    const gw = byKindName('NetworkPolicy', 'gateway');
    expect(gw.spec.ingress.flatMap((r: any) => r.from)).toEqual([{ namespaceSelector: {} }]);
    const mock = byKindName('NetworkPolicy', 'mock-llm');
    expect(mock.spec.ingress[0].from).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'orchestrator' } } }]);
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
      for (const v of Object.values<string>(secret.stringData)) expect(v).not.toMatch(/sk-[A-Za-z0-9_-]{16,}/);
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
      expect(o.replicas.map((r: any) => r.name).sort()).toEqual(['gateway', 'job-worker', 'orchestrator']);
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

  it('generates the monitoring ConfigMaps from monitoring/ (the one copy), every dashboard included', () => {
    expect(existsSync(repoPath('k8s/monitoring/files')), 'k8s/monitoring/files: a second copy of monitoring/').toBe(false);
    expect(readYaml('k8s/monitoring/kustomization.yaml').resources).toContain('../../monitoring');
    const generated = Object.fromEntries(
      readYaml(MONITORING_FILES).configMapGenerator.map((g: any) => [g.name, g.files.map((f: string) => `monitoring/${String(f).split('=').pop()}`)]),
    );
    expect(generated).toEqual({
      'prometheus-config': ['monitoring/prometheus/prometheus.k8s.yml'],
      'prometheus-rules': ['monitoring/prometheus/rules/actionedx.rules.yml'],
      'grafana-datasources': ['monitoring/grafana/provisioning/datasources/prometheus.yml'],
      'grafana-dashboard-provider': ['monitoring/grafana/provisioning/dashboards/dashboards.yml'],
      'grafana-dashboards': listFiles('monitoring/grafana/dashboards', (p) => p.endsWith('.json')),
    });
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
  /** The reason a rendering test skips, in its title; empty when kubectl is there. */
  const noKubectl = kubectl ? '' : ' (skipped: kubectl is not installed; set KUBECTL or put kubectl on PATH)';
  const render = (dir: string) => {
    const r = run(kubectl!, ['kustomize', repoPath(dir)]);
    expect(r.status, r.output).toBe(0);
    return parseAllDocuments(r.output).map((d) => d.toJS());
  };

  it.skipIf(!kubectl)(`render with kubectl kustomize, every object valid against its schema${noKubectl}`, async () => {
    for (const dir of ['k8s/base', 'k8s/monitoring', 'k8s/overlays/dev', 'k8s/overlays/prod']) {
      for (const obj of render(dir)) expect(await validateK8sObject(obj), `${dir}: ${obj.kind}/${obj.metadata?.name}`).toBe('valid');
    }
  });

  it.skipIf(!kubectl)(`renders monitoring/'s files byte for byte into the ConfigMaps Prometheus and Grafana mount${noKubectl}`, () => {
    for (const dir of ['k8s/monitoring', 'k8s/overlays/dev']) {
      const rendered = render(dir);
      const configMap = (name: string) => {
        const found = rendered.filter((d) => d.kind === 'ConfigMap' && d.metadata.name.startsWith(`${name}-`));
        expect(found, `${dir}: ConfigMap ${name}`).toHaveLength(1);
        expect(found[0].metadata.namespace, `${dir}: ConfigMap ${name}`).toBe('actionedx');
        return found[0];
      };
      const expected: [string, string, string][] = [
        ['prometheus-config', 'prometheus.yml', 'monitoring/prometheus/prometheus.k8s.yml'],
        ['prometheus-rules', 'actionedx.rules.yml', 'monitoring/prometheus/rules/actionedx.rules.yml'],
        ['grafana-datasources', 'prometheus.yml', 'monitoring/grafana/provisioning/datasources/prometheus.yml'],
        ['grafana-dashboard-provider', 'dashboards.yml', 'monitoring/grafana/provisioning/dashboards/dashboards.yml'],
        ...listFiles('monitoring/grafana/dashboards', (p) => p.endsWith('.json')).map(
          (d): [string, string, string] => ['grafana-dashboards', d.split('/').pop()!, d],
        ),
      ];
      for (const [name, key, source] of expected) {
        expect(configMap(name).data[key] === readText(source), `${dir}: ${name}/${key} differs from ${source}`).toBe(true);
      }
      expect(Object.keys(configMap('grafana-dashboards').data).length).toBe(expected.filter(([n]) => n === 'grafana-dashboards').length);
      // the Deployments mount the generated (hash-suffixed) names
      const volumes = rendered
        .filter((d) => d.kind === 'Deployment' && ['prometheus', 'grafana'].includes(d.metadata.name))
        .flatMap((d) => d.spec.template.spec.volumes);
      const mounted = volumes.flatMap((v: any) => [v.configMap?.name, ...(v.projected?.sources ?? []).map((s: any) => s.configMap?.name)]).filter(Boolean);
      expect(mounted.sort()).toEqual(
        ['prometheus-config', 'prometheus-rules', 'grafana-datasources', 'grafana-dashboard-provider', 'grafana-dashboards'].map((n) => configMap(n).metadata.name).sort(),
      );
    }
  });

  it.skipIf(!kubectl)(`dev runs everything; prod drops the mock LLM and talks to OpenAI${noKubectl}`, () => {
    const dev = render('k8s/overlays/dev');
    const names = (list: any[], kind: string) => list.filter((d) => d.kind === kind).map((d) => d.metadata.name).sort();
    expect(names(dev, 'Deployment')).toEqual(['gateway', 'grafana', 'job-worker', 'mock-llm', 'mongo', 'nats', 'orchestrator', 'prometheus', 'queue-redis', 'redis']);
    // The orchestrators scale on the chat queue everywhere (base); job workers stay at a fixed count in dev.
    expect(names(dev, 'ScaledObject')).toEqual(['orchestrator']);
    expect(dev.find((d) => d.metadata.name === 'orchestrator' && d.kind === 'Deployment').spec.replicas).toBe(2);
    const prod = render('k8s/overlays/prod');
    expect(names(prod, 'Deployment')).toEqual(['gateway', 'job-worker', 'orchestrator']);
    expect(names(prod, 'ScaledObject')).toEqual(['job-worker', 'orchestrator']);
    expect(names(prod, 'Service')).toEqual(['gateway', 'orchestrator']);
    const config = prod.find((d) => d.kind === 'ConfigMap');
    expect(config.data.OPENAI_BASE_URL).toBe('https://api.openai.com/v1');
    const gw = prod.find((d) => d.kind === 'Deployment' && d.metadata.name === 'gateway');
    expect(gw.spec.template.spec.containers[0].image).toBe(`${APP_IMAGE}:${JSON.parse(readText('package.json')).version}`);
    // generated names are wired through (hash suffixes)
    expect(gw.spec.template.spec.containers[0].envFrom[0].configMapRef.name).toBe(config.metadata.name);
    expect(prod.find((d) => d.kind === 'ScaledObject' && d.metadata.name === 'orchestrator').spec.minReplicaCount).toBe(
      prod.find((d) => d.kind === 'Deployment' && d.metadata.name === 'orchestrator').spec.replicas,
    );
    expect(names(prod, 'PodMonitor')).toEqual(['gateway', 'orchestrator']);
    expect(names(prod, 'NetworkPolicy')).toEqual(['gateway', 'orchestrator']);
    expect(config.data.QUEUE_REPLICAS).toBe('3');
    for (const hpa of prod.filter((d) => d.kind === 'HorizontalPodAutoscaler')) {
      const d = prod.find((x) => x.kind === 'Deployment' && x.metadata.name === hpa.metadata.name);
      expect(hpa.spec.minReplicas).toBe(d.spec.replicas);
    }
  });
});
