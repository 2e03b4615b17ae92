import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
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
  for (const k of ['NATS_URL', 'REDIS_URL', 'OPENAI_API_KEY', 'OPENAI_BASE_URL', 'PORT', 'MONGO_URL']) delete base[k];
  // OPS_PORT 0: the gateway's ops listener on a free port too (several gateways run side by side).
  const env: NodeJS.ProcessEnv = { ...base, NODE_ENV: 'test', LOG_LEVEL: 'info', LOG_PRETTY: 'false', OPS_PORT: '0' };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Start a built service (`services/<name>/dist/main.js`) and wait for its `listening` log line. */
export async function startService(
  name: ServiceName,
  env: Record<string, string | undefined>,
  opts: { label?: string; timeoutMs?: number } = {},
): Promise<ServiceProcess> {
  const proc = spawn(process.execPath, [`services/${name}/dist/main.js`], {
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
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
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
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));

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

/** A nats-server of the test's own on a free port: isolated subjects, and free to stop and restart. */
export async function startNats(port?: number): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  const p = port ?? (await freePort());
  const proc = spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(p)], { stdio: 'ignore' });
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

/** A redis-server of the test's own on a free port, keeping nothing on disk. */
export async function startRedis(port?: number): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  const p = port ?? (await freePort());
  const proc = spawn('/usr/bin/redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
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
