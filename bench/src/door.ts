/**
 * `npm run bench:door`: what the door (authentication, rate limits and budgets) costs per cached hit.
 *
 * 1. Micro: each piece alone, in this process, per call: JWT verification (HS256, RS256), an API key's
 *    lookup (cached in the gateway, and from Redis), and admission (in memory, and in Redis: one round trip).
 * 2. End to end: the same cached answer asked over REST, one request at a time on one keep-alive connection,
 *    from gateways that differ only in their door, in interleaved rounds (so the machine's noise falls on
 *    every side alike): open with an in-memory limiter (the baseline), open with the Redis limiter, a JWT
 *    with the Redis limiter, an API key with the Redis limiter. Per side: latency p50/p99, and the gateway's
 *    CPU per request from its own process_cpu_seconds_total.
 *
 * Writes bench/results/door.json. Loopback only; bounded in requests; stops what it started.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import {
  Admission,
  ApiKeys,
  JwtVerifier,
  MemoryApiKeyStore,
  RedisApiKeyStore,
  createGatewayMetrics,
  DEFAULT_ROLE_LIMITS,
} from '@actionedx/gateway';
import { createLogger, createMetricsRegistry, createRedisClient } from '@actionedx/shared';
import {
  ROOT,
  TEST_AUTH,
  UNLIMITED,
  adminHeaders,
  counterSum,
  createApiKey,
  mintToken,
  startStack,
  testAuthEnv,
  type ServiceProcess,
} from '@actionedx/testkit';
import { summarize, round } from './lib/stats.js';

const QUICK = process.argv.includes('--quick');
const MICRO_N = QUICK ? 2_000 : 10_000;
const ROUNDS = QUICK ? 3 : 6;
const PER_ROUND = QUICK ? 150 : 400;
const REDIS_BASE = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIS_DB = Number(process.env.BENCH_REDIS_DB ?? 15);
const logger = createLogger({ service: 'bench', version: '0', level: 'silent', pretty: false });

/**
 * Mean µs per call of `fn` (after a warm-up, `n` calls one after the other): wall time, and this process's CPU
 * (user + system, every thread: WebCrypto works on libuv's pool). A call that waits on Redis costs wall time
 * but little CPU.
 */
async function perCall(n: number, fn: () => unknown): Promise<{ wall: number; cpu: number }> {
  for (let i = 0; i < Math.min(500, n); i++) await fn();
  const cpu0 = process.cpuUsage();
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  const wall = Number(process.hrtime.bigint() - started) / 1_000 / n;
  const cpu = process.cpuUsage(cpu0);
  return { wall, cpu: (cpu.user + cpu.system) / n };
}

async function micro(): Promise<Record<string, { wall: number; cpu: number }>> {
  const redis = createRedisClient({ url: `${REDIS_BASE}/${REDIS_DB}`, name: 'bench-door', commandTimeoutMs: 1_000 });
  await new Promise<void>((resolve) => (redis.status === 'ready' ? resolve() : redis.once('ready', () => resolve())));
  const secret = new TextEncoder().encode(TEST_AUTH.secret);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const base = { jwksUrl: undefined, issuer: 'iss', audience: 'aud', clockToleranceS: 30, roleClaim: 'role' };
  const hs = new JwtVerifier({ ...base, secret, publicKey: undefined, algorithms: ['HS256'] });
  const rs = new JwtVerifier({ ...base, secret: undefined, publicKey: rsa.publicKey, algorithms: ['RS256'] });
  const claims = { sub: 'bench', iss: 'iss', aud: 'aud', exp: Math.floor(Date.now() / 1000) + 3_600 };
  const hsToken = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(secret);
  const rsToken = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);

  const cachedKeys = new ApiKeys(new MemoryApiKeyStore(), { cacheMs: 60_000 });
  const cachedKey = (await cachedKeys.create({ user_id: 'bench' })).key;
  const redisKeys = new ApiKeys(new RedisApiKeyStore(redis), { cacheMs: 0 });
  const redisKey = (await redisKeys.create({ user_id: 'bench' })).key;

  const metrics = () => createGatewayMetrics(createMetricsRegistry('gateway', { defaultMetrics: false }));
  const memory = new Admission({ kind: 'memory' }, { metrics: metrics(), logger });
  const inRedis = new Admission({ kind: 'redis', redis }, { metrics: metrics(), logger });
  const limits = { ...DEFAULT_ROLE_LIMITS.user, requests_per_minute: 1_000_000_000 };
  const subject = () => ({ key: `user:bench-${randomUUID()}`, limits });
  const one = subject();
  const cachedHit = { cached: true, usage: { total_tokens: 0 }, cost_usd: 0 };

  const out = {
    jwt_hs256_verify_us: await perCall(MICRO_N, () => hs.verify(hsToken)),
    jwt_rs256_verify_us: await perCall(MICRO_N, () => rs.verify(rsToken)),
    api_key_cached_us: await perCall(MICRO_N, () => cachedKeys.resolve(cachedKey)),
    api_key_redis_us: await perCall(MICRO_N, () => redisKeys.resolve(redisKey)),
    admit_memory_us: await perCall(MICRO_N, async () => (await memory.admit(one)).charge(cachedHit)),
    admit_redis_us: await perCall(MICRO_N, async () => (await inRedis.admit(one)).charge(cachedHit)),
  };
  redis.disconnect();
  return out;
}

interface Side {
  name: string;
  gateway: ServiceProcess;
  headers: Record<string, string>;
  latenciesMs: number[];
  cpuSeconds: number;
  requests: number;
}

const cpuOf = async (gw: ServiceProcess): Promise<number> => counterSum(await (await fetch(`${gw.opsUrl}/metrics`)).text(), 'process_cpu_seconds_total');

async function endToEnd(): Promise<Side[]> {
  const stack = await startStack({
    orchestrators: 1,
    redisDb: REDIS_DB,
    auth: 'open',
    gatewayEnv: { NODE_ENV: 'production', RATE_LIMITS: UNLIMITED },
    orchestratorEnv: { NODE_ENV: 'production' },
    mockLlmEnv: { NODE_ENV: 'production' },
  });
  try {
    // Without REDIS_URL the limiter is in memory: the baseline. The others count in Redis.
    const openMemory = await stack.addGateway({ REDIS_URL: '' });
    const required = await stack.addGateway(testAuthEnv());
    const key = await createApiKey(required.url, { user_id: 'bench' }, adminHeaders());
    const token = await mintToken('bench', { ttlS: 3_600 });
    const sides: Side[] = [
      { name: 'open, limiter in memory (baseline)', gateway: openMemory, headers: {}, latenciesMs: [], cpuSeconds: 0, requests: 0 },
      { name: 'open, limiter in Redis', gateway: stack.gateway, headers: {}, latenciesMs: [], cpuSeconds: 0, requests: 0 },
      { name: 'JWT (HS256), limiter in Redis', gateway: required, headers: { authorization: `Bearer ${token}` }, latenciesMs: [], cpuSeconds: 0, requests: 0 },
      { name: 'API key, limiter in Redis', gateway: required, headers: { authorization: `Bearer ${key.key}` }, latenciesMs: [], cpuSeconds: 0, requests: 0 },
    ];
    const body = JSON.stringify({ user_id: 'bench', message: `The door's cost ${randomUUID()}` });
    const ask = async (side: Side): Promise<number> => {
      const started = performance.now();
      const res = await fetch(`${side.gateway.url}/api/assistant/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...side.headers },
        body,
      });
      const json = (await res.json()) as { cached?: boolean };
      const ms = performance.now() - started;
      if (res.status !== 200) throw new Error(`${side.name}: HTTP ${res.status} ${JSON.stringify(json)}`);
      if (json.cached !== true) return Number.NaN;
      return ms;
    };
    for (const side of sides) for (let i = 0; i < 50; i++) await ask(side); // warm: cache, JIT, connections
    for (let r = 0; r < ROUNDS; r++) {
      for (const side of sides) {
        const cpu0 = await cpuOf(side.gateway);
        for (let i = 0; i < PER_ROUND; i++) {
          const ms = await ask(side);
          if (!Number.isNaN(ms)) side.latenciesMs.push(ms);
        }
        side.cpuSeconds += (await cpuOf(side.gateway)) - cpu0;
        side.requests += PER_ROUND;
      }
    }
    return sides;
  } finally {
    await stack.stop();
  }
}

const microFigures = await micro();
const sides = await endToEnd();
const base = sides[0]!;
const baseP50 = summarize(base.latenciesMs).p50;
const baseCpu = (base.cpuSeconds / base.requests) * 1e6;
const rows = sides.map((s) => {
  const lat = summarize(s.latenciesMs);
  const cpuUs = (s.cpuSeconds / s.requests) * 1e6;
  return {
    side: s.name,
    requests: s.latenciesMs.length,
    p50_ms: round(lat.p50, 3),
    p99_ms: round(lat.p99, 3),
    p50_over_baseline_us: round((lat.p50 - baseP50) * 1000, 0),
    gateway_cpu_us_per_request: round(cpuUs, 0),
    cpu_over_baseline_us: round(cpuUs - baseCpu, 0),
  };
});
const result = {
  date: new Date().toISOString(),
  node: process.version,
  quick: QUICK,
  micro_us_per_call: Object.fromEntries(
    Object.entries(microFigures).map(([k, v]) => [k.replace(/_us$/, ''), { wall_us: round(v.wall, 1), cpu_us: round(v.cpu, 1) }]),
  ),
  end_to_end_cached_hit: rows,
};
console.log('Micro (µs per call):');
console.table(result.micro_us_per_call);
console.log('A cached hit over REST, one at a time, by door:');
console.table(rows);
const dir = join(ROOT, 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'door.json'), `${JSON.stringify(result, null, 2)}\n`);
// Exit explicitly: a keep-alive socket or a timer of a client library may linger.
process.exit(0);
