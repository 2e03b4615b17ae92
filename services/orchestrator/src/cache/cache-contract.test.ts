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
import type { AnswerStore, CacheEntry } from './answer-store.js';
import { cacheKey } from './cache-key.js';
import { CacheNamespace } from './cache-namespace.js';
import type { FlightAttempt, FlightLease, FlightLock } from './flight-lock.js';
import { MemoryAnswerStore } from './memory-answer-store.js';
import { MemoryFlightLock } from './memory-flight-lock.js';
import { RedisAnswerStore } from './redis-answer-store.js';
import { RedisFlightLock } from './redis-flight-lock.js';
import { RedisGuard } from './redis-guard.js';

/**
 * One contract, two implementations: every behaviour single flight relies on, of the answer store and the
 * flight lock, against real Redis (127.0.0.1:6379 or REDIS_URL, a namespace of its own per test) and against
 * the in-process ones.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger({ service: 'cache-test', version: 'test', level: 'silent' });

/** One replica's view of the cache. */
interface Replica {
  store: AnswerStore;
  lock: FlightLock;
  close(): Promise<void>;
}

interface Replicas {
  /** Two handles on one cache, as two orchestrator replicas see it (the same objects for memory). */
  a: Replica;
  b: Replica;
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
    const namespace = new CacheNamespace(prefix);
    const replica = async (name: string): Promise<Replica> => {
      const guard = new RedisGuard(await client(name), { metrics, logger }, { closeClient: true });
      const store = new RedisAnswerStore({ guard, namespace, metrics, logger });
      const lock = new RedisFlightLock({ guard, namespace, logger });
      return { store, lock, close: async () => (await lock.close(), await store.close(), await guard.close()) };
    };
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
    const namespace = new CacheNamespace(prefix);
    const store = new MemoryAnswerStore({ namespace, metrics });
    const lock = new MemoryFlightLock({ namespace });
    const replica: Replica = { store, lock, close: async () => (await lock.close(), await store.close()) };
    return { a: replica, b: replica, metrics, close: () => replica.close() };
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

describe.each([redisBackend, memoryBackend])('answer store and flight lock contract ($name)', (backend) => {
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

  it('misses, then hits what was stored; counts hits at once and misses and coalesced answers when told', async () => {
    const k = key('What is a derivative?');
    expect(await r.a.store.get(k)).toBeNull();
    r.a.store.count('miss');
    const e = entry();
    expect(await r.a.store.set(k, e, 60)).toBe(true);
    expect(await r.a.store.get(k)).toEqual(e);
    r.b.store.count('coalesced');
    // A re-check by a request already counted is not a new request: not in the statistics.
    expect(await r.a.store.get(k, { record: false })).toEqual(e);
    await sleep(50); // counts are written without waiting
    const stats = await r.a.store.stats();
    expect(stats).toMatchObject({ hits: 1, misses: 1, coalesced: 1 });
    expect(stats.hit_rate).toBeCloseTo(1 / 3, 6);
    expect(await counted(r.metrics, 'get', 'hit')).toBe(1);
    expect(await counted(r.metrics, 'get', 'miss')).toBe(1);
    expect(await counted(r.metrics, 'get', 'coalesced')).toBe(1);
    expect(await counted(r.metrics, 'recheck', 'hit')).toBe(1);
    expect(await counted(r.metrics, 'set', 'success')).toBe(1);
  });

  it('serves an answer stored by one replica to the other', async () => {
    const k = key('shared');
    const e = entry('stored by a');
    await r.a.store.set(k, e, 60);
    expect(await r.b.store.get(k)).toEqual(e);
  });

  it('forgets an answer after its TTL', async () => {
    const k = key('short-lived');
    const storedAt = Date.now();
    await r.a.store.set(k, entry(), 1);
    expect(await r.a.store.get(k)).not.toBeNull();
    while ((await r.a.store.get(k, { record: false })) !== null) {
      expect(Date.now() - storedAt).toBeLessThan(5_000);
      await sleep(50);
    }
    expect(Date.now() - storedAt).toBeGreaterThanOrEqual(900);
  });

  it('refuses keys outside its namespace and TTLs or leases that are not positive integers', async () => {
    await expect(r.a.store.get('elsewhere:realtime_tutoring:abc')).rejects.toThrow(TypeError);
    await expect(r.a.store.set(key('x'), entry(), 0)).rejects.toThrow(RangeError);
    await expect(r.a.store.set(key('x'), entry(), 1.5)).rejects.toThrow(RangeError);
    await expect(r.a.lock.acquire(key('x'), -1)).rejects.toThrow(RangeError);
  });

  it('makes exactly one leader of 20 concurrent attempts on two replicas; the others see its release', async () => {
    const k = key('popular question');
    const attempts = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? r.a : r.b).lock.acquire(k, 10_000)),
    );
    const leases = attempts.filter(isLease);
    expect(leases).toHaveLength(1);
    expect(attempts.filter((x) => x === 'busy')).toHaveLength(19);

    const waiters = Array.from({ length: 19 }, (_, i) => (i % 2 === 0 ? r.a : r.b).lock.waitForRelease(k, { timeoutMs: 15_000 }));
    await sleep(100);
    await leases[0]!.release();
    expect(await Promise.all(waiters)).toEqual(Array(19).fill('released'));
  });

  it('tells waiters at once when the holder releases the key', async () => {
    const k = key('failing question');
    const lease = await r.a.lock.acquire(k, 10_000);
    expect(isLease(lease)).toBe(true);
    const waiters = [r.a, r.b, r.b].map((c) => timed(c.lock.waitForRelease(k, { timeoutMs: 15_000 })));
    await sleep(100);
    await (lease as FlightLease).release();
    for (const w of await Promise.all(waiters)) {
      expect(w.value).toBe('released');
      // Far below the 15 s timeout: the waiters noticed the release, they did not time out.
      expect(w.ms).toBeLessThan(5_000);
    }
    expect(isLease(await r.b.lock.acquire(k, 10_000))).toBe(true);
  });

  it('frees the key when a holder dies (lease expiry)', async () => {
    const k = key('leader crashed');
    expect(isLease(await r.a.lock.acquire(k, 300))).toBe(true);
    const waited = await timed(r.b.lock.waitForRelease(k, { timeoutMs: 15_000 }));
    expect(waited.value).toBe('released');
    expect(waited.ms).toBeLessThan(5_000);
    expect(isLease(await r.b.lock.acquire(k, 10_000))).toBe(true);
  });

  it('never lets a former holder release or extend a lease it lost', async () => {
    const k = key('slow leader');
    const old = (await r.a.lock.acquire(k, 200)) as FlightLease;
    await sleep(300);
    const current = await r.b.lock.acquire(k, 10_000);
    expect(isLease(current)).toBe(true);
    await old.release();
    expect(await r.a.lock.acquire(k, 10_000)).toBe('busy');
    expect(await old.extend(10_000)).toBe(false);
    expect(await (current as FlightLease).extend(10_000)).toBe(true);
  });

  it('extends a lease past its first term', async () => {
    const k = key('long answer');
    const lease = (await r.a.lock.acquire(k, 300)) as FlightLease;
    expect(await lease.extend(10_000)).toBe(true);
    await sleep(500);
    expect(await r.b.lock.acquire(k, 10_000)).toBe('busy');
  });

  it("lets a lease's token take it over on another replica (adopt), for the new term, and nobody else's", async () => {
    const k = key('queued miss');
    const reserved = (await r.a.lock.acquire(k, 300)) as FlightLease;
    expect(await r.b.lock.adopt(k, 'not-the-token', 10_000)).toBeUndefined();
    const adopted = await r.b.lock.adopt(k, reserved.token, 10_000);
    expect(adopted).toMatchObject({ key: k, token: reserved.token });
    // The new term, not the reservation's 300 ms.
    await sleep(500);
    expect(await r.a.lock.acquire(k, 10_000)).toBe('busy');
    expect(await adopted!.extend(10_000)).toBe(true);
    await adopted!.release();
    expect(await r.a.lock.isHeld(k)).toBe(false);
  });

  it('adopts nothing once the token lost the key (expired, or taken over)', async () => {
    const k = key('reservation ran out');
    const reserved = (await r.a.lock.acquire(k, 200)) as FlightLease;
    await sleep(300);
    expect(await r.b.lock.adopt(k, reserved.token, 10_000)).toBeUndefined();
    const current = (await r.b.lock.acquire(k, 10_000)) as FlightLease;
    expect(isLease(current)).toBe(true);
    expect(await r.a.lock.adopt(k, reserved.token, 10_000)).toBeUndefined();
    expect(await current.extend(10_000)).toBe(true);
  });

  it("releases by token only what that token holds, and wakes the key's waiters", async () => {
    const k = key('dropped job');
    const reserved = (await r.a.lock.acquire(k, 10_000)) as FlightLease;
    await r.b.lock.release(k, 'not-the-token');
    expect(await r.a.lock.isHeld(k)).toBe(true);
    const waiter = timed(r.a.lock.waitForRelease(k, { timeoutMs: 15_000 }));
    await sleep(50);
    await r.b.lock.release(k, reserved.token);
    const waited = await waiter;
    expect(waited.value).toBe('released');
    expect(waited.ms).toBeLessThan(5_000);
    expect(isLease(await r.b.lock.acquire(k, 10_000))).toBe(true);
  });

  it('settles a wait at once with nothing held, and on abort or timeout', async () => {
    expect(await r.a.lock.waitForRelease(key('nothing in flight'), { timeoutMs: 15_000 })).toBe('released');

    const held = key('held');
    await r.a.lock.acquire(held, 10_000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const aborted = await timed(r.b.lock.waitForRelease(held, { signal: controller.signal, timeoutMs: 15_000 }));
    expect(aborted.value).toBe('aborted');
    expect(aborted.ms).toBeLessThan(5_000);
    const timedOut = await timed(r.b.lock.waitForRelease(held, { timeoutMs: 150 }));
    expect(timedOut.value).toBe('timeout');
    expect(timedOut.ms).toBeGreaterThanOrEqual(140);
  });

  it('wakes its waiters when closed', async () => {
    const k = key('closing');
    await r.a.lock.acquire(k, 10_000);
    const waiting = timed(r.b.lock.waitForRelease(k, { timeoutMs: 15_000 }));
    await sleep(100);
    await r.b.lock.close();
    const w = await waiting;
    expect(w.value).toBe('unavailable');
    expect(w.ms).toBeLessThan(5_000);
  });

  it('invalidates by task type and by pattern, leaving counters and locks alone', async () => {
    const tutoring = ['a', 'b', 'c'].map((m) => key(m));
    const audits = ['a', 'b'].map((m) => key(m, 'strategy_audit'));
    for (const k of [...tutoring, ...audits]) await r.a.store.set(k, entry(), 60);
    await r.a.store.get(tutoring[0]!);
    r.a.store.count('miss');
    expect(isLease(await r.a.lock.acquire(tutoring[1]!, 10_000))).toBe(true);

    expect(await r.b.store.invalidate({ task_type: 'strategy_audit' })).toEqual({
      pattern: `${prefix}:strategy_audit:*`,
      deleted: 2,
    });
    expect(await r.a.store.get(tutoring[2]!, { record: false })).not.toBeNull();
    expect(await r.b.store.invalidate({ pattern: `${prefix}:*` })).toEqual({ pattern: `${prefix}:*`, deleted: 3 });

    for (const k of [...tutoring, ...audits]) expect(await r.a.store.get(k, { record: false })).toBeNull();
    expect(await r.a.store.stats()).toMatchObject({ hits: 1, misses: 1, total_keys: 0 });
    expect(await r.b.lock.acquire(tutoring[1]!, 10_000)).toBe('busy');
    expect(await counted(r.metrics, 'invalidate', 'success')).toBe(2);
    expect(await counted(r.metrics, 'delete', 'success')).toBe(5);
  });

  it('deletes only what matches both a pattern and a task type', async () => {
    await r.a.store.set(key('x'), entry(), 60);
    await r.a.store.set(key('x', 'collaboration'), entry(), 60);
    expect(await r.a.store.invalidate({ pattern: `${prefix}:*`, task_type: 'collaboration' })).toMatchObject({ deleted: 1 });
    expect(await r.a.store.get(key('x'), { record: false })).not.toBeNull();
  });

  it('refuses bad patterns', async () => {
    for (const pattern of ['ai_cache_elsewhere:*', `${prefix}:[a-z]*`, `${prefix}:\\*`, `${prefix}:${'x'.repeat(300)}`]) {
      const refused = r.a.store.invalidate({ pattern });
      await expect(refused).rejects.toBeInstanceOf(AppError);
      await expect(refused).rejects.toMatchObject({ code: 'invalid_pattern', retryable: false });
    }
  });

  it('reports its figures and updates the gauges', async () => {
    await r.a.store.set(key('one'), entry(), 60);
    await r.a.store.set(key('two'), entry(), 60);
    await r.b.store.set(key('three', 'collaboration'), entry(), 60);
    await r.a.lock.acquire(key('one'), 10_000);
    await r.a.store.get(key('one'));
    const stats = CacheStatsSchema.parse(await r.b.store.stats());
    expect(stats).toMatchObject({
      status: backend.name === 'redis' ? 'connected' : 'memory',
      backend: backend.name,
      hits: 1,
      misses: 0,
      coalesced: 0,
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
    const health = await r.a.store.health();
    if (backend.name === 'redis') {
      expect(health).toMatchObject({ status: 'healthy', backend: 'redis', breaker: 'closed' });
      expect(health.latency_ms).toBeGreaterThanOrEqual(0);
      expect(r.a.store.status()).toBe('connected');
    } else {
      expect(health).toEqual({ status: 'memory', backend: 'memory', latency_ms: 0, breaker: 'closed' });
      expect(r.a.store.status()).toBe('memory');
    }
  });
});
