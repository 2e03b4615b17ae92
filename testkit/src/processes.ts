import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type ServiceName = 'gateway' | 'orchestrator' | 'mock-llm' | 'embedded';

export interface ServiceProcess {
  name: string;
  port: number;
  url: string;
  /** The ops listener (`/metrics`, health) of a service that has one apart from `url` (gateway, embedded); else `url`. */
  opsUrl: string;
  proc: ChildProcess;
  /** Every JSON log line the process wrote, parsed. */
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

/** A free loopback port (the OS picks it; closed again at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** The environment of a child: ours without the variables that would point it at other servers. */
function childEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const base = { ...process.env };
  for (const k of ['NATS_URL', 'REDIS_URL', 'QUEUE_REDIS_URL', 'OPENAI_API_KEY', 'OPENAI_BASE_URL', 'PORT', 'MONGO_URL', 'ROLE']) delete base[k];
  // OPS_PORT 0: the gateway's ops listener on a free port too (several gateways run side by side).
  // The mock model answers at once unless a test sets its pace (the embedded demo's default is a human pace).
  const env: NodeJS.ProcessEnv = {
    ...base,
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    LOG_PRETTY: 'false',
    OPS_PORT: '0',
    MOCK_LLM_TTFT_MS: '0',
    MOCK_LLM_TOKENS_PER_SECOND: '0',
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Start a built service (`services/<name>/dist/main.js`) and wait for its `listening` log line. */
export async function startService(
  name: ServiceName,
  env: Record<string, string | undefined>,
  opts: { label?: string; timeoutMs?: number } = {},
): Promise<ServiceProcess> {
  const main = `services/${name}/dist/main.js`;
  // A setup error, not a reason to skip: `npm test` builds before it tests.
  if (!existsSync(`${ROOT}${main}`)) throw new Error(`${main} is missing: run \`npm run build\` first (\`npm test\` builds before it tests)`);
  const proc = spawn(process.execPath, [main], {
    cwd: ROOT,
    env: childEnv({ PORT: '0', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const label = opts.label ?? name;
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let buf = '';
  let onListening: ((port: number) => void) | undefined;
  let opsPort: number | undefined;
  proc.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        logs.push(rec);
        if (rec.msg === 'listening' && typeof rec.port === 'number') {
          if (typeof rec.ops_port === 'number') opsPort = rec.ops_port;
          onListening?.(rec.port);
        }
      } catch {
        /* not a log line */
      }
    }
  });
  proc.stderr.setEncoding('utf8').on('data', (d: string) => stderr.push(d));

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start: ${stderr.join('')}`)), opts.timeoutMs ?? 15_000);
    onListening = (p) => {
      clearTimeout(timer);
      resolve(p);
    };
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited with ${code} before listening: ${stderr.join('')}`));
    });
  });

  return {
    name: label,
    port,
    url: `http://127.0.0.1:${port}`,
    opsUrl: `http://127.0.0.1:${opsPort ?? port}`,
    proc,
    logs,
    exited,
    kill: (signal = 'SIGKILL') => void proc.kill(signal),
    async stop(graceMs = 5000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * Runs a built service expected to exit (a refusal to start): resolves with its exit code, its JSON log lines and
 * its stderr once it exits; rejects if it is still running after `timeoutMs` (it is killed then).
 */
export async function runToExit(
  name: ServiceName,
  env: Record<string, string | undefined>,
  timeoutMs = 15_000,
): Promise<{ code: number | null; logs: Record<string, unknown>[]; stderr: string }> {
  const proc = spawn(process.execPath, [`services/${name}/dist/main.js`], { cwd: ROOT, env: childEnv({ PORT: '0', ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => proc.once('exit', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  if (signal === 'SIGKILL') throw new Error(`${name} was still running after ${timeoutMs} ms`);
  const logs = out.split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
  return { code, logs, stderr: err };
}

export interface NatsServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** JetStream's store of a test server, kept per port: a server restarted on the same port finds its data. */
function natsStoreDir(name: string): string {
  const dir = join(tmpdir(), 'actionedx-nats', name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A nats-server of the test's own on a free port, with JetStream: isolated subjects, and free to stop and restart. */
export async function startNats(port?: number): Promise<NatsServer> {
  const p = port ?? (await freePort());
  const proc = spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(p), '-js', '-sd', natsStoreDir(`single-${p}`)], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  await waitForPort(p);
  return {
    url: `nats://127.0.0.1:${p}`,
    port: p,
    async stop() {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

export interface NatsClusterNode extends NatsServer {
  name: string;
  /** Monitoring port (`/jsz`, `/varz`). */
  monitorPort: number;
  running(): boolean;
  /** Kill the process at once (SIGKILL): a node lost, not a node leaving. */
  kill(): Promise<void>;
  /** Start it again with the same ports, store and routes. */
  restart(): Promise<void>;
}

export interface NatsCluster {
  /** Every node's client URL, comma-separated (what `NATS_URL` takes). */
  url: string;
  nodes: NatsClusterNode[];
  /** Resolves once the JetStream meta group has a leader seen by every running node. */
  waitForJetStream(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** One node of a test cluster: a nats-server process that can be killed and started again on the same ports. */
class ClusterNode implements NatsClusterNode {
  readonly url: string;
  readonly port: number;
  readonly monitorPort: number;
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    private readonly ports: { client: number; cluster: number; monitor: number },
    private readonly clusterName: string,
    private readonly routes: string,
    private readonly store: string,
  ) {
    this.url = `nats://127.0.0.1:${ports.client}`;
    this.port = ports.client;
    this.monitorPort = ports.monitor;
  }

  running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async restart(): Promise<void> {
    if (this.running()) return;
    const { client, cluster, monitor } = this.ports;
    const proc = spawn(
      '/usr/sbin/nats-server',
      ['-a', '127.0.0.1', '-p', String(client), '-m', String(monitor), '-js', '-sd', this.store, '--server_name', this.name,
        '--cluster_name', this.clusterName, '--cluster', `nats://127.0.0.1:${cluster}`, '--routes', this.routes],
      { stdio: 'ignore' },
    );
    this.proc = proc;
    this.exited = new Promise<void>((r) => proc.once('exit', () => r()));
    await waitForPort(client);
  }

  async stop(): Promise<void> {
    if (!this.running()) return;
    this.proc!.kill('SIGTERM');
    await this.exited;
  }

  async kill(): Promise<void> {
    if (!this.running()) return;
    this.proc!.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * Three (or `size`) nats-servers clustered on loopback ports, with JetStream: each with its own store, routes to
 * the others, a server name. Stopping one leaves a quorum for replicated streams.
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  // A free port can be taken by another test's process between the check and the bind (a node then never opens):
  // the whole cluster starts again on new ports, after the nodes that did start are stopped.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNatsClusterOnce(size);
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

async function startNatsClusterOnce(size: number): Promise<NatsCluster> {
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), cluster: await freePort(), monitor: await freePort() })));
  const clusterName = `actionedx-test-${ports[0]!.client}`;
  const nodes = ports.map((p, i) => {
    const routes = ports.filter((_, j) => j !== i).map((o) => `nats://127.0.0.1:${o.cluster}`).join(',');
    return new ClusterNode(`n${i + 1}-${p.client}`, p, clusterName, routes, natsStoreDir(`cluster-${ports[0]!.client}/n${i + 1}`));
  });
  const started = await Promise.allSettled(nodes.map((n) => n.restart()));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(join(tmpdir(), 'actionedx-nats', `cluster-${ports[0]!.client}`), { recursive: true, force: true });
    throw failed.reason;
  }
  const cluster: NatsCluster = {
    url: nodes.map((n) => n.url).join(','),
    nodes,
    async waitForJetStream(timeoutMs = 20_000) {
      await until(
        async () => {
          const leaders = await Promise.all(
            nodes.filter((n) => n.running()).map(async (n) => {
              try {
                const res = await fetch(`http://127.0.0.1:${n.monitorPort}/jsz`);
                const body = (await res.json()) as { meta_cluster?: { leader?: string } };
                return body.meta_cluster?.leader ?? '';
              } catch {
                return '';
              }
            }),
          );
          return leaders.length > 0 && leaders.every((l) => l !== '' && l === leaders[0]);
        },
        timeoutMs,
        'a JetStream meta leader',
      );
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      rmSync(join(tmpdir(), 'actionedx-nats', `cluster-${ports[0]!.client}`), { recursive: true, force: true });
    },
  };
  try {
    await cluster.waitForJetStream();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/**
 * A redis-server of the test's own on a free port, keeping nothing on disk. `args` go on its command line, e.g.
 * `['--maxmemory-policy', 'noeviction']` for a queue Redis.
 */
export async function startRedis(port?: number, opts: { args?: string[] } = {}): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  const p = port ?? (await freePort());
  const proc = spawn('/usr/bin/redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(opts.args ?? [])], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  await waitForPort(p);
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    async stop() {
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const { connect } = await import('node:net');
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`port ${port} did not open`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
