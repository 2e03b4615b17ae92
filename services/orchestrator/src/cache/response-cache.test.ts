import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AppError,
  CacheStatsSchema,
  createCacheMetrics,
  createLogger,
  createRedisClient,
  type CacheMetrics,
  type Redis,
  type TaskType,
} from '@actionedx/shared';
import { cacheKey } from './cache-key.js';
import { MemoryResponseCache } from './memory-response-cache.js';
import { RedisResponseCache } from './redis-response-cache.js';
import type { CacheEntry, FlightAttempt, FlightLease, ResponseCache } from './response-cache.js';

/**
 * One contract, two implementations: every behaviour the pipeline relies on, against real Redis
 * (127.0.0.1:6379 or REDIS_URL, a namespace of its own per test) and against the in-process cache.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger({ service: 'cache-test', level: 'silent' });

interface Replicas {
  /** Two handles on one cache, as two orchestrator replicas see it (the same object for memory). */
  a: ResponseCache;
  b: ResponseCache;
  metrics: CacheMetrics;
  close(): Promise<void>;
}

interface Backend {
  name: 'redis' | 'memory';
  open(prefix: string): Promise<Replicas>;
}

async function connected(redis: Redis): Promise<Redis> {
  if (redis.status !== 'ready') await once(redis, 'ready');
  return redis;
}

const redisBackend: Backend = {
  name: 'redis',
  async open(prefix) {
    const metrics = createCacheMetrics(new Registry());
    // A generous command timeout: these tests check behaviour, and a loaded CI machine must not fail them open.
    const client = (name: string) =>
      connected(createRedisClient({ url: REDIS_URL, name: `${prefix}-${name}`, commandTimeoutMs: 2_000 }));
    const replica = async (name: string) =>
      new RedisResponseCache({ redis: await client(name), metrics, logger }, { prefix, closeClient: true });
    const [a, b] = await Promise.all([replica('a'), replica('b')]);
    return {
      a,
      b,
      metrics,
      async close() {
        await Promise.all([a.close(), b.close()]);
        const admin = await client('cleanup');
        let cursor = '0';
        do {
          const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
          if (keys.length > 0) await admin.unlink(...keys);
          cursor = next;
        } while (cursor !== '0');
        await admin.quit();
      },
    };
  },
};

const memoryBackend: Backend = {
  name: 'memory',
  async open(prefix) {
    const metrics = createCacheMetrics(new Registry());
    const cache = new MemoryResponseCache({ metrics }, { prefix });
    return { a: cache, b: cache, metrics, close: () => cache.close() };
  },
};

const entry = (response = 'A derivative measures how fast a function changes.'): CacheEntry => ({
  v: 1,
  response,
  suggestions: ['Give me another example'],
  model: 'gpt-4o-mini',
  usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 },
  cost_usd: 0.00002,
  created_at: Date.now(),
});

const isLease = (a: FlightAttempt): a is FlightLease => typeof a === 'object';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await p;
  return { value, ms: performance.now() - started };
}

async function counted(metrics: CacheMetrics, operation: string, result: string): Promise<number> {
  const { values } = await metrics.operations.get();
  return values.find((v) => v.labels.operation === operation && v.labels.result === result)?.value ?? 0;
}

describe.each([redisBackend, memoryBackend])('ResponseCache contract ($name)', (backend) => {
  let prefix: string;
  let r: Replicas;
  const key = (message: string, taskType: TaskType = 'realtime_tutoring') =>
    cacheKey(
      {
        task_type: taskType,
        mode: 'ally',
        model: 'gpt-4o-mini',
        prompt_version: '1',
        history: [],
        message,
        context: {},
        scope: 'global',
      },
      prefix,
    );

  beforeEach(async () => {
    prefix = `ai_cache_test_${randomBytes(6).toString('hex')}`;
    r = await backend.open(prefix);
  });
  afterEach(async () => {
    await r.close();
  });

  it('misses, then hits what was stored, and counts both', async () => {
    const k = key('What is a derivative?');
    expect(await r.a.lookup(k)).toBeNull();
    const e = entry();
    expect(await r.a.store(k, e, 60)).toBe(true);
    expect(await r.a.lookup(k)).toEqual(e);
    // The leader's re-check under its lease is not a new request: not counted in the statistics.
    expect(await r.a.lookup(k, { record: false })).toEqual(e);
    const stats = await r.a.stats();
    expect(stats).toMatchObject({ hits: 1, misses: 1, hit_rate: 0.5 });
    expect(await counted(r.metrics, 'get', 'hit')).toBe(1);
    expect(await counted(r.metrics, 'recheck', 'hit')).toBe(1);
    expect(await counted(r.metrics, 'get', 'miss')).toBe(1);
    expect(await counted(r.metrics, 'set', 'success')).toBe(1);
  });

  it('serves an answer stored by one replica to the other', async () => {
    const k = key('shared');
    const e = entry('stored by a');
    await r.a.store(k, e, 60);
    expect(await r.b.lookup(k)).toEqual(e);
  });

  it('forgets an answer after its TTL', async () => {
    const k = key('short-lived');
    const storedAt = Date.now();
    await r.a.store(k, entry(), 1);
    expect(await r.a.lookup(k)).not.toBeNull();
    while ((await r.a.lookup(k, { record: false })) !== null) {
      expect(Date.now() - storedAt).toBeLessThan(5_000);
      await sleep(50);
    }
    expect(Date.now() - storedAt).toBeGreaterThanOrEqual(900);
  });

  it('refuses keys outside its namespace and TTLs or leases that are not positive integers', async () => {
    await expect(r.a.lookup('elsewhere:realtime_tutoring:abc')).rejects.toThrow(TypeError);
    await expect(r.a.store(key('x'), entry(), 0)).rejects.toThrow(RangeError);
    await expect(r.a.store(key('x'), entry(), 1.5)).rejects.toThrow(RangeError);
    await expect(r.a.acquireFlight(key('x'), -1)).rejects.toThrow(RangeError);
  });

  it('makes exactly one leader of 20 concurrent attempts on two replicas; the others get its answer', async () => {
    const k = key('popular question');
    const attempts = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? r.a : r.b).acquireFlight(k, 10_000)),
    );
    const leases = attempts.filter(isLease);
    expect(leases).toHaveLength(1);
    expect(attempts.filter((x) => x === 'busy')).toHaveLength(19);

    const waiters = Array.from({ length: 19 }, (_, i) => (i % 2 === 0 ? r.a : r.b).waitForFlight(k, { timeoutMs: 15_000 }));
    await sleep(100);
    const e = entry('computed once');
    expect(await r.a.store(k, e, 60)).toBe(true);
    await leases[0]!.release();
    const answers = await Promise.all(waiters);
    expect(answers).toEqual(Array(19).fill(e));
  });

  it('tells waiters at once when the leader gives up without storing', async () => {
    const k = key('failing question');
    const lease = await r.a.acquireFlight(k, 10_000);
    expect(isLease(lease)).toBe(true);
    const waiters = [r.a, r.b, r.b].map((c) => timed(c.waitForFlight(k, { timeoutMs: 15_000 })));
    await sleep(100);
    await (lease as FlightLease).release();
    for (const w of await Promise.all(waiters)) {
      expect(w.value).toBeNull();
      // Far below the 15 s timeout: the waiters noticed the release, they did not time out.
      expect(w.ms).toBeLessThan(5_000);
    }
    expect(isLease(await r.b.acquireFlight(k, 10_000))).toBe(true);
  });

  it('frees the key when a leader dies holding it (lease expiry)', async () => {
    const k = key('leader crashed');
    expect(isLease(await r.a.acquireFlight(k, 300))).toBe(true);
    const waited = await timed(r.b.waitForFlight(k, { timeoutMs: 15_000 }));
    expect(waited.value).toBeNull();
    expect(waited.ms).toBeLessThan(5_000);
    expect(isLease(await r.b.acquireFlight(k, 10_000))).toBe(true);
  });

  it('never lets a former leader release or extend a lease it lost', async () => {
    const k = key('slow leader');
    const old = (await r.a.acquireFlight(k, 200)) as FlightLease;
    await sleep(300);
    const current = await r.b.acquireFlight(k, 10_000);
    expect(isLease(current)).toBe(true);
    await old.release();
    expect(await r.a.acquireFlight(k, 10_000)).toBe('busy');
    expect(await old.extend(10_000)).toBe(false);
    expect(await (current as FlightLease).extend(10_000)).toBe(true);
  });

  it('extends a lease past its first term', async () => {
    const k = key('long answer');
    const lease = (await r.a.acquireFlight(k, 300)) as FlightLease;
    expect(await lease.extend(10_000)).toBe(true);
    await sleep(500);
    expect(await r.b.acquireFlight(k, 10_000)).toBe('busy');
  });

  it('settles waitForFlight at once with nothing to wait for, and on abort or timeout', async () => {
    const k = key('nothing in flight');
    expect(await r.a.waitForFlight(k, { timeoutMs: 15_000 })).toBeNull();
    const e = entry();
    await r.a.store(k, e, 60);
    expect(await r.b.waitForFlight(k, { timeoutMs: 15_000 })).toEqual(e);

    const held = key('held');
    await r.a.acquireFlight(held, 10_000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const aborted = await timed(r.b.waitForFlight(held, { signal: controller.signal, timeoutMs: 15_000 }));
    expect(aborted.value).toBeNull();
    expect(aborted.ms).toBeLessThan(5_000);
    const timedOut = await timed(r.b.waitForFlight(held, { timeoutMs: 150 }));
    expect(timedOut.value).toBeNull();
    expect(timedOut.ms).toBeGreaterThanOrEqual(140);
  });

  it('wakes its waiters with null when closed', async () => {
    const k = key('closing');
    await r.a.acquireFlight(k, 10_000);
    const waiting = timed(r.b.waitForFlight(k, { timeoutMs: 15_000 }));
    await sleep(100);
    await r.b.close();
    const w = await waiting;
    expect(w.value).toBeNull();
    expect(w.ms).toBeLessThan(5_000);
  });

  it('invalidates by task type and by pattern, leaving counters and locks alone', async () => {
    const tutoring = ['a', 'b', 'c'].map((m) => key(m));
    const audits = ['a', 'b'].map((m) => key(m, 'strategy_audit'));
    for (const k of [...tutoring, ...audits]) await r.a.store(k, entry(), 60);
    await r.a.lookup(tutoring[0]!);
    await r.a.lookup(key('missing'));
    expect(isLease(await r.a.acquireFlight(tutoring[1]!, 10_000))).toBe(true);

    expect(await r.b.invalidate({ task_type: 'strategy_audit' })).toEqual({
      pattern: `${prefix}:strategy_audit:*`,
      deleted: 2,
    });
    expect(await r.a.lookup(tutoring[2]!, { record: false })).not.toBeNull();
    expect(await r.b.invalidate({ pattern: `${prefix}:*` })).toEqual({ pattern: `${prefix}:*`, deleted: 3 });

    for (const k of [...tutoring, ...audits]) expect(await r.a.lookup(k, { record: false })).toBeNull();
    expect(await r.a.stats()).toMatchObject({ hits: 1, misses: 1, total_keys: 0 });
    expect(await r.b.acquireFlight(tutoring[1]!, 10_000)).toBe('busy');
    expect(await counted(r.metrics, 'invalidate', 'success')).toBe(2);
    expect(await counted(r.metrics, 'delete', 'success')).toBe(5);
  });

  it('deletes only what matches both a pattern and a task type', async () => {
    await r.a.store(key('x'), entry(), 60);
    await r.a.store(key('x', 'collaboration'), entry(), 60);
    expect(await r.a.invalidate({ pattern: `${prefix}:*`, task_type: 'collaboration' })).toMatchObject({ deleted: 1 });
    expect(await r.a.lookup(key('x'), { record: false })).not.toBeNull();
  });

  it('refuses bad patterns', async () => {
    for (const pattern of ['*', 'ai_cache_elsewhere:*', `${prefix}:[a-z]*`, `${prefix}:\\*`, `${prefix}:${'x'.repeat(300)}`]) {
      const refused = r.a.invalidate({ pattern });
      await expect(refused).rejects.toBeInstanceOf(AppError);
      await expect(refused).rejects.toMatchObject({ code: 'invalid_pattern', retryable: false });
    }
  });

  it('reports its figures and updates the gauges', async () => {
    await r.a.store(key('one'), entry(), 60);
    await r.a.store(key('two'), entry(), 60);
    await r.b.store(key('three', 'collaboration'), entry(), 60);
    await r.a.acquireFlight(key('one'), 10_000);
    await r.a.lookup(key('one'));
    const stats = CacheStatsSchema.parse(await r.b.stats());
    expect(stats).toMatchObject({
      status: backend.name === 'redis' ? 'connected' : 'memory',
      backend: backend.name,
      hits: 1,
      misses: 0,
      hit_rate: 1,
      total_keys: 3,
      keys_by_task_type: {
        realtime_tutoring: 2,
        collaboration: 1,
        strategy_audit: 0,
        framework_alignment: 0,
        ethical_assessment: 0,
      },
    });
    expect(stats.memory_used_bytes).toBeGreaterThan(0);
    const gauge = await r.metrics.keys.get();
    expect(gauge.values.find((v) => v.labels.type === 'realtime_tutoring')?.value).toBe(2);
    expect((await r.metrics.sizeBytes.get()).values[0]?.value).toBe(stats.memory_used_bytes);
  });

  it('reports its health and status', async () => {
    const health = await r.a.health();
    if (backend.name === 'redis') {
      expect(health).toMatchObject({ status: 'healthy', backend: 'redis', breaker: 'closed' });
      expect(health.latency_ms).toBeGreaterThanOrEqual(0);
      expect(r.a.status()).toBe('connected');
    } else {
      expect(health).toEqual({ status: 'memory', backend: 'memory', latency_ms: 0, breaker: 'closed' });
      expect(r.a.status()).toBe('memory');
    }
  });
});
