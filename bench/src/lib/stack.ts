import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { UNLIMITED, freePort, startNats, startService, startStack, until, type ServiceProcess, type Stack } from '@actionedx/testkit';
import { natsServerPid, onCleanup, ROOT, trackPid } from './procs.js';
import { noteServiceMemory } from './memory.js';
import { RemoteProfiler } from './profiler.js';

/** The Redis database the bench uses (flushed at each stack start; tests use 1-15 per vitest worker). */
export const BENCH_REDIS_DB = Number(process.env.BENCH_REDIS_DB ?? 15);
export const REDIS_BASE = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface BenchStackOptions {
  scenario: string;
  orchestrators: number;
  /** Services to CPU-profile (profiles land in bench/results/profiles/<scenario>/<service>-<n>.cpuprofile). */
  profile: string[];
  gatewayEnv?: Record<string, string>;
  orchestratorEnv?: Record<string, string>;
  mockLlmEnv?: Record<string, string>;
  /** Name of the first profile section (see `profileSection`). Default `all`. */
  firstSection?: string;
}

export interface BenchStack extends Stack {
  natsPid: number | undefined;
  redis: Redis;
  redisDbUrl: string;
  /** `PUT /mock/config` on mock-llm. */
  mock(config: { ttft_ms?: number; tokens_per_second?: number; completion_tokens?: number }): Promise<void>;
  /** Last lines each service wrote (logs are not parsed during a run: that would cost the bench's CPU). */
  tail(service: ServiceProcess): string;
  /** .cpuprofile files written so far (`<service>-<section>.cpuprofile`). */
  profileFiles: string[];
  /** When profiling: write the current section's profiles and start a new section. */
  profileSection(next: string): Promise<void>;
}

/** Settings of a deployment rather than of the tests: production mode, default heartbeat and ack timers, info logs. */
const COMMON = { NODE_ENV: 'production', LOG_LEVEL: 'info', LOG_PRETTY: 'false', SHUTDOWN_GRACE_MS: '1000' };

export async function startBenchStack(opts: BenchStackOptions): Promise<BenchStack> {
  const redisDbUrl = `${REDIS_BASE}/${BENCH_REDIS_DB}`;
  const redis = new Redis(redisDbUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
  await redis.flushdb();
  const profileDir = join(ROOT, 'bench', 'results', 'profiles', opts.scenario);
  /** Inspector ports of the services to profile, by label. */
  const inspect = new Map<string, number>();
  const profEnv = async (service: string, label = service): Promise<Record<string, string>> => {
    if (!opts.profile.includes(service)) return {};
    const port = await freePort();
    inspect.set(label, port);
    return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:${port}`.trim() };
  };
  // The orchestrators share one env in startStack: only the first is profiled when there are several.
  let stack: Stack;
  try {
    stack = await startStack({
      orchestrators: opts.orchestrators,
      redisDb: BENCH_REDIS_DB,
      // The scenarios measure the relay without the door; its cost per cached hit is bench/src/door.ts's.
      auth: 'open',
      gatewayEnv: { ...COMMON, HEARTBEAT_MS: '1000', ACK_TIMEOUT_MS: '2000', ...(await profEnv('gateway')), ...opts.gatewayEnv },
      orchestratorEnv: { ...COMMON, OPENAI_TIMEOUT_MS: '30000', ...(opts.orchestrators === 1 ? await profEnv('orchestrator') : {}), ...opts.orchestratorEnv },
      mockLlmEnv: { ...COMMON, ...(await profEnv('mock-llm')), ...opts.mockLlmEnv },
    });
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const tails = new Map<ServiceProcess, string>();
  const quiet = (s: ServiceProcess) => {
    trackPid(s.proc.pid);
    tails.set(s, '');
    s.proc.stdout!.removeAllListeners('data');
    s.proc.stdout!.on('data', (d: string) => tails.set(s, ((tails.get(s) ?? '') + d).slice(-4000)));
  };
  for (const s of [stack.gateway, stack.mockLlm, ...stack.orchestrators]) quiet(s);
  // Memory of the services once ready and when the stack stops, after the scenario's load.
  const readMemory = (phase: 'start' | 'end') =>
    Promise.all([
      noteServiceMemory({ scenario: opts.scenario, service: 'gateway', role: 'gateway', phase }, stack.gateway.opsUrl),
      ...stack.orchestrators.map((o, i) =>
        noteServiceMemory({ scenario: opts.scenario, service: stack.orchestrators.length > 1 ? `orchestrator ${i + 1}` : 'orchestrator', role: 'orchestrator', phase }, o.url),
      ),
    ]);
  await readMemory('start');
  const natsPid = natsServerPid(stack.nats.port);
  trackPid(natsPid);

  const profilers = new Map<string, RemoteProfiler>();
  if (inspect.size > 0) mkdirSync(profileDir, { recursive: true });
  for (const [label, port] of inspect) {
    const p = await RemoteProfiler.attach(port);
    await p.start();
    profilers.set(label, p);
  }
  const profileFiles: string[] = [];
  let section = opts.firstSection ?? 'all';
  const writeProfiles = async (restart: boolean) => {
    for (const [label, p] of profilers) {
      const file = join(profileDir, `${label}-${section}.cpuprofile`);
      await p.stopTo(file).then(
        () => profileFiles.push(file),
        (err) => console.error(`profile of ${label} lost: ${String(err)}`),
      );
      if (restart) await p.start();
    }
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await readMemory('end');
    await writeProfiles(false);
    for (const p of profilers.values()) p.close();
    const grace = 3000;
    const services = [stack.gateway, ...stack.orchestrators, stack.mockLlm];
    await Promise.all(services.map((s) => s.stop(grace)));
    await stack.nats.stop();
    redis.disconnect();
  };
  const unregister = onCleanup(`stack ${opts.scenario}`, stop);

  return {
    ...stack,
    natsPid,
    redis,
    redisDbUrl,
    profileFiles,
    async addOrchestrator(env?: Record<string, string>) {
      const o = await stack.addOrchestrator({ ...COMMON, ...env });
      quiet(o);
      stack.orchestrators.push(o);
      return o;
    },
    async mock(config) {
      const res = await fetch(`${stack.mockLlm.url}/mock/config`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(config),
      });
      if (!res.ok) throw new Error(`PUT /mock/config answered ${res.status}: ${await res.text()}`);
    },
    tail: (s) => tails.get(s) ?? '',
    async profileSection(next) {
      if (profilers.size === 0) return;
      await writeProfiles(true);
      section = next;
    },
    async stop() {
      unregister();
      await stop();
    },
  };
}

export interface RelayStack {
  nats: { url: string; port: number; stop(): Promise<void> };
  natsPid: number | undefined;
  gateway: ServiceProcess;
  wsUrl: string;
  profileFiles: string[];
  /** Last lines the gateway wrote. */
  tail(): string;
  stop(): Promise<void>;
}

/**
 * The gateway alone on its bus: a nats-server of its own and one gateway (the machine's Redis for its session
 * store, database BENCH_REDIS_DB, flushed first), with the same settings as in `startBenchStack`, and nothing
 * else: no orchestrator, no mock-llm. Whatever answers the jobs is started by the caller. When the gateway is
 * profiled, its profile is `<scenario>/gateway-<section>.cpuprofile`.
 */
export async function startRelayStack(opts: { scenario: string; profile: string[]; section: string; gatewayEnv?: Record<string, string> }): Promise<RelayStack> {
  const redisDbUrl = `${REDIS_BASE}/${BENCH_REDIS_DB}`;
  const redis = new Redis(redisDbUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
  try {
    await redis.flushdb();
  } finally {
    redis.disconnect();
  }
  const nats = await startNats();
  const natsPid = natsServerPid(nats.port);
  trackPid(natsPid);
  const inspectPort = opts.profile.includes('gateway') ? await freePort() : undefined;
  let gateway: ServiceProcess;
  try {
    gateway = await startService('gateway', {
      ...COMMON,
      NATS_URL: nats.url,
      REDIS_URL: redisDbUrl,
      HOST: '127.0.0.1',
      AUTH_MODE: 'open',
      RATE_LIMITS: UNLIMITED,
      HEARTBEAT_MS: '1000',
      ACK_TIMEOUT_MS: '2000',
      ...(inspectPort ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:${inspectPort}`.trim() } : {}),
      ...opts.gatewayEnv,
    });
  } catch (err) {
    await nats.stop();
    throw err;
  }
  trackPid(gateway.proc.pid);
  // Logs are not parsed during a run (that would cost the bench's CPU): only the last lines are kept.
  let tail = '';
  gateway.proc.stdout!.removeAllListeners('data');
  gateway.proc.stdout!.on('data', (d: string) => (tail = (tail + d).slice(-4000)));
  const profileFiles: string[] = [];
  let profiler: RemoteProfiler | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await noteServiceMemory({ scenario: opts.scenario, service: `gateway (${opts.section} stack)`, role: 'gateway', phase: 'end' }, gateway.opsUrl);
    if (profiler) {
      const dir = join(ROOT, 'bench', 'results', 'profiles', opts.scenario);
      const file = join(dir, `gateway-${opts.section}.cpuprofile`);
      await profiler.stopTo(file).then(
        () => profileFiles.push(file),
        (err) => console.error(`profile of gateway lost: ${String(err)}`),
      );
      profiler.close();
    }
    await gateway.stop(3000);
    await nats.stop();
  };
  const unregister = onCleanup(`relay stack ${opts.scenario}`, stop);
  try {
    await until(async () => (await fetch(`${gateway.url}/readyz`)).status === 200, 15_000, 'gateway to be ready');
    await noteServiceMemory({ scenario: opts.scenario, service: `gateway (${opts.section} stack)`, role: 'gateway', phase: 'start' }, gateway.opsUrl);
    if (inspectPort) {
      mkdirSync(join(ROOT, 'bench', 'results', 'profiles', opts.scenario), { recursive: true });
      profiler = await RemoteProfiler.attach(inspectPort);
      await profiler.start();
    }
  } catch (err) {
    unregister();
    await stop();
    throw err;
  }
  return {
    nats,
    natsPid,
    gateway,
    wsUrl: gateway.url.replace('http', 'ws'),
    profileFiles,
    tail: () => tail,
    async stop() {
      unregister();
      await stop();
    },
  };
}
