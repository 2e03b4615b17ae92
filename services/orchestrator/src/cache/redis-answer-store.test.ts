import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AppError,
  createCacheMetrics,
  createLogger,
  createRedisClient,
  type CacheMetrics,
  type Redis,
} from '@actionedx/shared';
import type { CacheEntry } from './answer-store.js';
import { cacheKey } from './cache-key.js';
import { CacheNamespace } from './cache-namespace.js';
import type { FlightLease } from './flight-lock.js';
import { RedisAnswerStore } from './redis-answer-store.js';
import { RedisFlightLock, type RedisFlightLockOptions } from './redis-flight-lock.js';
import { RedisGuard } from './redis-guard.js';

const logger = createLogger({ service: 'cache-test', version: 'test', level: 'silent' });

/** One replica's Redis cache: the answer store and the flight lock on one guarded client. */
interface RedisCache {
  store: RedisAnswerStore;
  lock: RedisFlightLock;
  close(): Promise<void>;
}

function redisCache(redis: Redis, metrics: CacheMetrics, prefix: string, lockOpts: RedisFlightLockOptions = {}): RedisCache {
  const namespace = new CacheNamespace(prefix);
  const guard = new RedisGuard(redis, { metrics, logger }, { closeClient: true });
  const store = new RedisAnswerStore({ guard, namespace, metrics, logger });
  const lock = new RedisFlightLock({ guard, namespace, logger }, lockOpts);
  return { store, lock, close: async () => (await lock.close(), await store.close(), await guard.close()) };
}

/** What only Redis does: state visible to every replica, pub/sub wake-ups, and failing open when it goes away. */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';
/**
 * The fail-open promise is "within tens of milliseconds" (50 ms command timeout, no offline queue, breaker);
 * the assertion leaves room for a loaded 2-core machine while still catching any wait for a reconnect
 * (≥ 1 s) or a queue that waits for Redis to come back.
 */
const FAIL_OPEN_BOUND_MS = 300;

const entry = (response = 'An answer'): CacheEntry => ({
  v: 1,
  response,
  suggestions: [],
  model: 'gpt-4o-mini',
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  cost_usd: 0,
  created_at: Date.now(),
});

const keyOf = (message: string, prefix: string) =>
  cacheKey(
    {
      task_type: 'realtime_tutoring',
      mode: 'oracle',
      model: 'gpt-4o-mini',
      prompt_version: '1',
      history: [],
      message,
      context: {},
      scope: 'global',
    },
    prefix,
  );

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function within<T>(bound: number, p: Promise<T>): Promise<T> {
  const started = performance.now();
  const value = await p;
  expect(performance.now() - started).toBeLessThan(bound);
  return value;
}

async function connected(redis: Redis): Promise<Redis> {
  if (redis.status !== 'ready') await once(redis, 'ready');
  return redis;
}

async function counted(metrics: CacheMetrics, operation: string, result: string): Promise<number> {
  const { values } = await metrics.operations.get();
  return values.find((v) => v.labels.operation === operation && v.labels.result === result)?.value ?? 0;
}

describe('Redis answer store and flight lock on the shared Redis', () => {
  let prefix: string;
  let admin: Redis;
  const caches: RedisCache[] = [];

  async function open(name: string, opts: RedisFlightLockOptions = {}) {
    const redis = await connected(
      createRedisClient({ url: REDIS_URL, name: `${prefix}-${name}`, commandTimeoutMs: 2_000 }),
    );
    const metrics = createCacheMetrics(new Registry());
    const cache = redisCache(redis, metrics, prefix, opts);
    caches.push(cache);
    return { cache, metrics };
  }

  beforeEach(async () => {
    prefix = `ai_cache_test_${randomBytes(6).toString('hex')}`;
    admin = await connected(createRedisClient({ url: REDIS_URL, name: `${prefix}-admin`, commandTimeoutMs: 5_000 }));
  });

  afterEach(async () => {
    await Promise.all(caches.splice(0).map((c) => c.close()));
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await admin.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
    await admin.quit();
  });

  async function patternSubscribed(connectionName: string): Promise<boolean> {
    const clients = (await admin.client('LIST')) as string;
    const line = clients.split('\n').find((l) => l.includes(` name=${connectionName} `));
    return line !== undefined && / psub=1 /.test(line);
  }

  it('keeps hit, miss and coalesced counters in Redis, shared by every replica', async () => {
    const { cache: a } = await open('a');
    const { cache: b } = await open('b');
    const k = keyOf('counted', prefix);
    await a.store.get(k);
    a.store.count('miss');
    await a.store.set(k, entry(), 60);
    await a.store.get(k);
    await b.store.get(k);
    b.store.count('coalesced');
    await waitUntil(async () => (await admin.hget(`${prefix}:stats`, 'coalesced')) === '1');
    expect(await admin.hgetall(`${prefix}:stats`)).toEqual({ hits: '2', misses: '1', coalesced: '1' });
    expect(await b.store.stats()).toMatchObject({ hits: 2, misses: 1, coalesced: 1, hit_rate: 0.5 });
  });

  it('stores answers under <prefix>:<task_type>:<hash> with their TTL, locks beside them', async () => {
    const { cache } = await open('a');
    const k = keyOf('layout', prefix);
    await cache.store.set(k, entry(), 120);
    await cache.store.get(k);
    const ttl = await admin.ttl(k);
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
    await cache.lock.acquire(k, 10_000);
    const lockKey = `${prefix}:lock:${k.slice(prefix.length + 1)}`;
    expect(await admin.pttl(lockKey)).toBeGreaterThan(5_000);
    expect(await cache.store.invalidate({ pattern: `${prefix}:*` })).toMatchObject({ deleted: 1 });
    expect(await admin.exists(lockKey, `${prefix}:stats`)).toBe(2);
  });

  it('treats an unreadable entry as a miss', async () => {
    const { cache, metrics } = await open('a');
    const k = keyOf('corrupt', prefix);
    await admin.set(k, '{"v":1,"response":', 'EX', 60);
    expect(await cache.store.get(k)).toBeNull();
    expect((await metrics.lookupLatency.get()).values.some((v) => v.labels.result === 'miss' && v.value === 1)).toBe(true);
  });

  it('notices a release without notifications: it polls', async () => {
    const { cache } = await open('a', { pollMs: 25 });
    const k = keyOf('polled', prefix);
    const lockKey = `${prefix}:lock:${k.slice(prefix.length + 1)}`;
    // A holder that writes straight to Redis and publishes nothing.
    await admin.set(lockKey, 'someone', 'PX', 10_000);
    const waiting = cache.lock.waitForRelease(k, { timeoutMs: 15_000 });
    await sleep(100);
    await admin.del(lockKey);
    expect(await waiting).toBe('released');
  });

  it('wakes a waiter on another replica through pub/sub, long before its next poll', async () => {
    const { cache: leader } = await open('leader');
    const { cache: follower } = await open('follower', { pollMs: 60_000 });
    const k = keyOf('notified', prefix);
    const lease = (await leader.lock.acquire(k, 10_000)) as FlightLease;
    const waiting = follower.lock.waitForRelease(k, { timeoutMs: 30_000 });
    // The subscriber connects lazily on the first wait; CLIENT LIST shows when its PSUBSCRIBE is active.
    await waitUntil(() => patternSubscribed(`${prefix}-follower:flight`));
    const started = performance.now();
    await lease.release();
    expect(await waiting).toBe('released');
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

/** A Redis server of the test's own, on a free port, that it can kill, restart, pause and resume. */
class OwnRedisServer {
  private proc: ChildProcess | undefined;

  constructor(readonly port: number) {}

  static async start(): Promise<OwnRedisServer> {
    const server = new OwnRedisServer(await freePort());
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const proc = spawn(
      REDIS_SERVER,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc = proc;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000);
      proc.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${output}`));
      });
    });
  }

  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGCONT');
    proc.kill('SIGKILL');
    await exited;
  }

  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }
}

async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const address = probe.address();
  probe.close();
  await once(probe, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('Redis answer store and flight lock when Redis fails', () => {
  let server: OwnRedisServer;
  let cache: RedisCache;
  let metrics: CacheMetrics;

  beforeEach(async () => {
    server = await OwnRedisServer.start();
    metrics = createCacheMetrics(new Registry());
    // The house defaults: 50 ms command timeout, no offline queue, breaker at 5 failures / 1 s.
    const redis = await connected(createRedisClient({ url: server.url, name: 'cache-fail-open-test' }));
    cache = redisCache(redis, metrics, 'ai_cache');
  });

  afterEach(async () => {
    await cache.close();
    await server.kill();
  });

  it('fails open within milliseconds while Redis is down, and caches again once it is back', { timeout: 40_000 }, async () => {
    // Its own server: the default namespace, the public key format.
    const k = keyOf('survives an outage', 'ai_cache');
    await cache.store.set(k, entry(), 60);
    expect(await cache.store.get(k)).not.toBeNull();

    await server.kill();
    for (let round = 0; round < 3; round++) {
      expect(await within(FAIL_OPEN_BOUND_MS, cache.store.get(k))).toBeNull();
      expect(await within(FAIL_OPEN_BOUND_MS, cache.store.set(k, entry(), 60))).toBe(false);
      expect(await within(FAIL_OPEN_BOUND_MS, cache.lock.acquire(k, 10_000))).toBe('unavailable');
      expect(await within(FAIL_OPEN_BOUND_MS, cache.lock.waitForRelease(k, { timeoutMs: 10_000 }))).toBe('unavailable');
      expect(await within(FAIL_OPEN_BOUND_MS, cache.store.stats())).toMatchObject({
        status: 'disconnected',
        hits: 0,
        total_keys: 0,
        memory_used_bytes: null,
      });
      expect(await within(FAIL_OPEN_BOUND_MS, cache.store.health())).toMatchObject({ status: 'disconnected', latency_ms: null });
    }
    const lookups = await within(
      FAIL_OPEN_BOUND_MS,
      Promise.all(Array.from({ length: 50 }, (_, i) => cache.store.get(keyOf(`burst ${i}`, 'ai_cache')))),
    );
    expect(lookups.every((e) => e === null)).toBe(true);
    expect(cache.store.status()).toBe('disconnected');
    await expect(cache.store.invalidate({ pattern: 'ai_cache:*' })).rejects.toMatchObject({
      code: 'cache_unavailable',
      retryable: true,
    });
    await expect(cache.store.invalidate({ pattern: 'ai_cache:*' })).rejects.toBeInstanceOf(AppError);

    // Down long enough for the reconnect backoff to grow and the breaker to cool down: recovery must not need traffic.
    await sleep(1_500);
    await server.start();
    await waitUntil(async () => (await cache.store.set(k, entry('after the outage'), 60)) && (await cache.store.get(k)) !== null);
    expect(cache.store.status()).toBe('connected');
    expect(await cache.store.get(k)).toMatchObject({ response: 'after the outage' });
    expect(await cache.store.health()).toMatchObject({ status: 'healthy', breaker: 'closed' });
  });

  it('stops waiting for a Redis that hangs: command timeout, then the open breaker', { timeout: 40_000 }, async () => {
    const k = keyOf('hung server', 'ai_cache');
    await cache.store.set(k, entry(), 60);

    server.pause();
    try {
      for (let i = 0; i < 8; i++) expect(await within(FAIL_OPEN_BOUND_MS, cache.store.get(k))).toBeNull();
      expect(await counted(metrics, 'get', 'error')).toBeGreaterThanOrEqual(5);
      expect(await counted(metrics, 'get', 'skipped')).toBeGreaterThanOrEqual(1);
      expect(cache.store.status()).toBe('disconnected');
      expect((await metrics.breakerOpen.get()).values[0]?.value).toBe(1);
      expect(await within(FAIL_OPEN_BOUND_MS, cache.store.set(k, entry(), 60))).toBe(false);
      expect(await within(FAIL_OPEN_BOUND_MS, cache.lock.acquire(k, 10_000))).toBe('unavailable');
      expect(await within(FAIL_OPEN_BOUND_MS, cache.store.health())).toMatchObject({ status: 'disconnected', breaker: 'open' });
    } finally {
      server.resume();
    }
    await waitUntil(async () => (await cache.store.get(k)) !== null);
    expect(cache.store.status()).toBe('connected');
  });
});
