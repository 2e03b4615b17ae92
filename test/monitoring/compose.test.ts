import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { readText, readYaml, repoPath } from './support.js';

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[] | string;
  entrypoint?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  expose?: string[];
  volumes?: string[];
  networks?: string[];
  restart?: string;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  deploy?: { replicas?: number };
  container_name?: string;
}
interface Compose {
  services: Record<string, Service>;
  networks: Record<string, unknown>;
  volumes: Record<string, unknown>;
}

const compose = readYaml<Compose>('docker-compose.yml');

/**
 * What Compose v1 accepts (docker-compose 1.29, the last v1, validates every file against the Compose spec
 * of its day): the seed's commands use `docker-compose`, so the file stays within it; v2 accepts all of it.
 */
const COMPOSE_V1 = {
  topLevel: ['version', 'services', 'networks', 'volumes', 'configs', 'secrets'],
  service: `blkio_config build cap_add cap_drop cgroup_parent command configs container_name cpu_count cpu_percent
    cpu_period cpu_quota cpu_rt_period cpu_rt_runtime cpu_shares cpus cpuset credential_spec depends_on deploy
    device_cgroup_rules devices dns dns_opt dns_search domainname entrypoint env_file environment expose extends
    external_links extra_hosts group_add healthcheck hostname image init ipc isolation labels links logging
    mac_address mem_limit mem_reservation mem_swappiness memswap_limit network_mode networks oom_kill_disable
    oom_score_adj pid pids_limit platform ports privileged profiles pull_policy read_only restart runtime scale
    secrets security_opt shm_size stdin_open stop_grace_period stop_signal storage_opt sysctls tmpfs tty ulimits
    user userns_mode volumes volumes_from working_dir`.split(/\s+/),
  healthcheck: ['disable', 'interval', 'retries', 'start_period', 'test', 'timeout'],
  dependsOnConditions: ['service_started', 'service_healthy', 'service_completed_successfully'],
};
const S = compose.services;
const APP_ROLES = { gateway: '8001', orchestrator: '8002', 'mock-llm': '8090' } as const;
// Images without a shell or HTTP client to run a health check with (scratch-based exporters).
const NO_HEALTHCHECK = ['nats-exporter', 'redis-exporter'];

describe('docker-compose.yml', () => {
  it('is a file Compose v1 (docker-compose, format 3.x) accepts as well as v2: no top-level name, only keys v1 knows', () => {
    const raw = parse(readText('docker-compose.yml')) as Record<string, unknown>;
    const unknown = Object.keys(raw).filter((k) => !k.startsWith('x-') && !COMPOSE_V1.topLevel.includes(k));
    expect(unknown, 'top-level keys Compose v1 refuses').toEqual([]);
    const version = raw.version as string | number | undefined;
    if (version !== undefined) expect(String(version)).toMatch(/^3(\.\d+)?$/);
    for (const [name, s] of Object.entries(S) as [string, Record<string, any>][]) {
      expect(Object.keys(s).filter((k) => !COMPOSE_V1.service.includes(k)), `${name}: service keys Compose v1 refuses`).toEqual([]);
      expect(Object.keys(s.healthcheck ?? {}).filter((k) => !COMPOSE_V1.healthcheck.includes(k)), `${name}: healthcheck keys`).toEqual([]);
      for (const [dep, spec] of Object.entries<Record<string, unknown>>(s.depends_on ?? {})) {
        expect(Object.keys(spec), `${name} depends_on ${dep}`).toEqual(['condition']);
        expect(COMPOSE_V1.dependsOnConditions, `${name} depends_on ${dep}`).toContain(spec.condition);
      }
    }
  });

  it('runs the whole stack', () => {
    expect(Object.keys(S)).toEqual(
      expect.arrayContaining(['nats', 'redis', 'mongo', 'mock-llm', 'gateway', 'orchestrator', 'prometheus', 'grafana']),
    );
  });

  it('puts every service on the one network, with a restart policy', () => {
    expect(Object.keys(compose.networks)).toEqual(['actionedx-network']);
    for (const [name, s] of Object.entries(S)) {
      expect(s.networks, name).toEqual(['actionedx-network']);
      expect(['unless-stopped', 'always'], name).toContain(s.restart);
      expect(s.container_name, `${name}: a fixed container name prevents scaling`).toBeUndefined();
    }
  });

  it('health-checks every service that can be', () => {
    for (const [name, s] of Object.entries(S)) {
      if (NO_HEALTHCHECK.includes(name)) continue;
      expect(s.healthcheck?.test?.[0], name).toBe('CMD');
    }
  });

  it('waits only on dependencies that have health checks, and that exist', () => {
    for (const [name, s] of Object.entries(S)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(S[dep], `${name} depends on ${dep}`).toBeDefined();
        if (condition === 'service_healthy') expect(S[dep]!.healthcheck, `${name} waits for ${dep} to be healthy`).toBeDefined();
      }
    }
  });

  it('keeps data in declared named volumes and mounts files that exist', () => {
    const declared = Object.keys(compose.volumes);
    expect(declared.sort()).toEqual(['grafana-data', 'mongo-data', 'nats-data', 'prometheus-data', 'queue-redis-data', 'redis-data']);
    const used = new Set<string>();
    for (const [name, s] of Object.entries(S)) {
      for (const v of s.volumes ?? []) {
        const [source] = v.split(':') as [string];
        if (source.startsWith('.')) expect(existsSync(repoPath(source)), `${name}: ${source}`).toBe(true);
        else {
          expect(declared, `${name}: ${source}`).toContain(source);
          used.add(source);
        }
      }
    }
    expect([...used].sort()).toEqual(declared.sort());
  });

  it('runs NATS with JetStream and its monitoring port', () => {
    const cmd = S.nats!.command as string[];
    expect(cmd).toContain('-js');
    expect(cmd.join(' ')).toContain('-m 8222');
    expect(S.nats!.image).toMatch(/^nats:2\.9/);
    expect(S.redis!.image).toMatch(/^redis:7/);
  });

  it('builds one image for every role and starts each role\'s entry point on its port', () => {
    const images = new Set(Object.keys(APP_ROLES).map((r) => S[r]!.image));
    expect(images.size).toBe(1);
    for (const [role, port] of Object.entries(APP_ROLES)) {
      const s = S[role]!;
      expect(s.build?.context, role).toBe('.');
      const command = Array.isArray(s.command) ? s.command.join(' ') : s.command!;
      expect(command, role).toContain(`services/${role}/dist/main.js`);
      expect(existsSync(repoPath(`services/${role}/package.json`)), role).toBe(true);
      expect(s.environment?.PORT, role).toBe(port);
      // reachable from the other containers (mock-llm listens on 127.0.0.1 unless told)
      expect(s.environment?.HOST, role).toBe('0.0.0.0');
      expect(s.healthcheck!.test.join(' '), role).toContain(`127.0.0.1:${port}/`);
    }
    for (const role of ['gateway', 'orchestrator']) {
      expect(S[role]!.environment).toMatchObject({ NATS_URL: 'nats://nats:4222', REDIS_URL: 'redis://redis:6379/0' });
    }
  });

  it('publishes the gateway on 8001 and runs two orchestrators with no fixed host port', () => {
    expect(S.gateway!.ports).toEqual(['8001:8001']);
    // /metrics and health on the ops port: reachable by Prometheus on the network, never published.
    expect(S.gateway!.environment?.OPS_PORT).toBe('9464');
    expect(S.gateway!.expose).toEqual(['9464']);
    // Authentication is on: its secrets come from the host's environment, never from the file.
    expect(S.gateway!.environment).toMatchObject({ JWT_SECRET: '${JWT_SECRET:-}', ADMIN_API_KEY: '${ADMIN_API_KEY:-}' });
    expect(S.orchestrator!.deploy?.replicas).toBe(2);
    expect(S.orchestrator!.ports).toBeUndefined();
    expect(S.orchestrator!.environment).toMatchObject({ MONGO_URL: 'mongodb://mongo:27017', MONGO_DB: 'actionedx' });
  });

  it('passes OPENAI_API_KEY through from the host, and uses the mock LLM without one', () => {
    const env = S.orchestrator!.environment!;
    expect(env.OPENAI_API_KEY).toBe('${OPENAI_API_KEY:-}');
    expect(env.OPENAI_BASE_URL).toBe('${OPENAI_BASE_URL:-}');
    expect(S.orchestrator!.entrypoint).toEqual(['/bin/sh', '-c']);
    // Run the start script as the container would (compose turns $$ into $), with `node` stubbed.
    const script = (S.orchestrator!.command as string[])[0]!.replaceAll('$$', '$').replace(/exec node .*/, 'echo "$OPENAI_BASE_URL|$OPENAI_API_KEY"');
    const start = (vars: Record<string, string>) =>
      spawnSync('/bin/sh', ['-c', script], { env: { PATH: process.env.PATH, ...vars }, encoding: 'utf8' }).stdout.trim();
    expect(start({ OPENAI_API_KEY: '', OPENAI_BASE_URL: '' })).toBe('http://mock-llm:8090/v1|');
    expect(start({ OPENAI_API_KEY: 'sk-real', OPENAI_BASE_URL: '' })).toBe('|sk-real');
    expect(start({ OPENAI_API_KEY: 'k', OPENAI_BASE_URL: 'http://vllm:8000/v1' })).toBe('http://vllm:8000/v1|k');
    expect(start({ OPENAI_API_KEY: '', OPENAI_BASE_URL: 'http://ollama:11434/v1' })).toBe('http://ollama:11434/v1|');
  });

  it('runs job workers (ROLE=jobs, the orchestrator image) on a queue Redis of their own that never evicts', () => {
    const q = S['queue-redis']!;
    const cmd = (q.command as string[]).join(' ');
    expect(cmd).toContain('--maxmemory-policy noeviction');
    expect(cmd).toContain('--appendonly yes');
    const w = S['job-worker']!;
    expect(w.image).toBe(S.orchestrator!.image);
    expect((w.command as string[]).join(' ')).toContain('services/orchestrator/dist/main.js');
    expect(w.environment).toMatchObject({ ROLE: 'jobs', QUEUE_REDIS_URL: 'redis://queue-redis:6379/0', PORT: '8002', HOST: '0.0.0.0' });
    expect(S.gateway!.environment?.QUEUE_REDIS_URL).toBe('redis://queue-redis:6379/0');
    expect(S.orchestrator!.environment?.QUEUE_REDIS_URL).toBeUndefined();
    expect(w.depends_on?.['queue-redis']?.condition).toBe('service_healthy');
  });

  it('runs Prometheus on 9090 with 30 days of retention and the rules mounted beside its config', () => {
    const p = S.prometheus!;
    expect(p.ports).toEqual(['9090:9090']);
    const cmd = p.command as string[];
    expect(cmd).toContain('--storage.tsdb.retention.time=30d');
    expect(cmd).toContain('--config.file=/etc/prometheus/prometheus.yml');
    expect(p.volumes).toContain('./monitoring/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    // prometheus.yml loads rules/*.yml relative to itself
    expect(p.volumes).toContain('./monitoring/prometheus/rules:/etc/prometheus/rules:ro');
  });

  it('runs Grafana on 3001 with the seed\'s login and the provisioning mounted', () => {
    const g = S.grafana!;
    expect(g.ports).toEqual(['3001:3000']);
    expect(g.environment?.GF_SECURITY_ADMIN_USER).toBe('${GRAFANA_ADMIN_USER:-admin}');
    expect(g.environment?.GF_SECURITY_ADMIN_PASSWORD).toBe('${GRAFANA_ADMIN_PASSWORD:-actionedx2024}');
    expect(g.volumes).toContain('./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro');
    expect(existsSync(repoPath(g.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!.replace('/etc/grafana/dashboards', 'monitoring/grafana/dashboards')))).toBe(true);
  });
});

describe('Dockerfile', () => {
  const text = readText('Dockerfile');
  const lines = text.split('\n');
  const stages = lines.filter((l) => /^FROM /.test(l));
  const finalStage = text.slice(text.lastIndexOf('\nFROM '));

  it('builds in stages from node:20-bookworm-slim', () => {
    expect(text).toMatch(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) expect(s).toMatch(/^FROM \$\{NODE_IMAGE\} AS \w+/);
  });

  it('installs from the lockfile, compiles, and drops dev dependencies', () => {
    expect(text).toMatch(/npm ci\b/);
    expect(text).toMatch(/npm run build\b/);
    expect(text).toMatch(/npm prune --omit=dev\b/);
  });

  it('gives npm ci the manifest of every npm workspace (found by the manifests stage, not listed)', () => {
    const workspaces = JSON.parse(readText('package.json')).workspaces as string[];
    const manifests = /^FROM \$\{NODE_IMAGE\} AS manifests\n([\s\S]*?)\n\n/m.exec(text)?.[1];
    expect(manifests).toBeDefined();
    const runLine = manifests!.slice(manifests!.indexOf('RUN ') + 4).replace(/\\\n/g, ' ');
    // run the stage's command on the repository (the build context, node_modules aside)
    const out = mkdtempSync(join(tmpdir(), 'actionedx-manifests-'));
    const r = spawnSync('/bin/sh', ['-c', runLine.replaceAll('/manifests', out).replace(`mkdir ${out}`, `mkdir -p ${out}`)], { cwd: repoPath(), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    for (const ws of workspaces) expect(existsSync(join(out, ws, 'package.json')), ws).toBe(true);
    expect(existsSync(join(out, 'package-lock.json'))).toBe(true);
    expect(existsSync(join(out, 'package.json'))).toBe(true);
    rmSync(out, { recursive: true, force: true });
    expect(text.indexOf('COPY --from=manifests /manifests/ ./')).toBeLessThan(text.search(/^RUN .*npm ci/m));
  });

  it('does not leave a workspace out of the build context', () => {
    const ignored = readText('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const workspaces = JSON.parse(readText('package.json')).workspaces as string[];
    for (const ws of workspaces) {
      for (const pattern of ignored) expect(ws === pattern || ws.startsWith(`${pattern}/`), `${pattern} excludes ${ws}`).toBe(false);
    }
  });

  it('runs as a non-root user, node as the entry point, with a health check', () => {
    expect(finalStage).toMatch(/^USER node$/m);
    expect(finalStage).toMatch(/^ENTRYPOINT \["node"\]$/m);
    expect(finalStage).toMatch(/^HEALTHCHECK /m);
    const cmd = /^CMD \["(services\/[\w-]+)\/dist\/main\.js"\]$/m.exec(finalStage);
    expect(cmd).not.toBeNull();
    expect(existsSync(repoPath(cmd![1]!, 'package.json'))).toBe(true);
  });

  it('.dockerignore keeps local builds, dependencies and secrets out of the context', () => {
    const ignore = readText('.dockerignore').split('\n').map((l) => l.trim());
    for (const p of ['**/node_modules', '**/dist', '.git', '.env', '.env.*']) expect(ignore).toContain(p);
  });
});
