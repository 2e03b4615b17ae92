import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, createCacheMetrics, createLogger, createRedisClient, type Redis } from '@actionedx/shared';
import { cacheKey } from './cache-key.js';
import { CacheNamespace } from './cache-namespace.js';
import type { AnswerStore, CacheEntry } from './answer-store.js';
import type { FlightLock } from './flight-lock.js';
import { MemoryAnswerStore } from './memory-answer-store.js';
import { MemoryFlightLock } from './memory-flight-lock.js';
import { RedisAnswerStore } from './redis-answer-store.js';
import { RedisFlightLock } from './redis-flight-lock.js';
import { RedisGuard } from './redis-guard.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const hash = 'a'.repeat(64);
const ns = new CacheNamespace('ai_cache');

function refusal(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError ? err.code : 'not an AppError';
  }
  return undefined;
}

describe('CacheNamespace', () => {
  it('lays out answers, counters, locks and channels', () => {
    const key = `ai_cache:strategy_audit:${hash}`;
    expect(ns.taskTypeOf(key)).toBe('strategy_audit');
    expect(ns.lockKey(key)).toBe(`ai_cache:lock:strategy_audit:${hash}`);
    expect(ns.flightChannel(key)).toBe(`ai_cache:flight:strategy_audit:${hash}`);
    expect(ns.keyOfFlightChannel(ns.flightChannel(key))).toBe(key);
    expect(ns.statsKey).toBe('ai_cache:stats');
  });

  it('tells answers from everything else', () => {
    for (const other of ['ai_cache:stats', `ai_cache:lock:strategy_audit:${hash}`, `other:strategy_audit:${hash}`, 'ai_cache:x:y']) {
      expect(ns.taskTypeOf(other)).toBeUndefined();
      expect(() => ns.assertAnswerKey(other)).toThrow(TypeError);
    }
    expect(ns.keyOfFlightChannel(`other:flight:strategy_audit:${hash}`)).toBeUndefined();
  });

  it('refuses a prefix that could act as a glob', () => {
    expect(() => new CacheNamespace('ai*')).toThrow(TypeError);
    expect(() => new CacheNamespace('a:b')).toThrow(TypeError);
  });

  it('accepts patterns inside the namespace and matches only answer keys', () => {
    const target = ns.invalidationTarget({ pattern: 'ai_cache:*' });
    expect(target.pattern).toBe('ai_cache:*');
    expect(target.matches(`ai_cache:collaboration:${hash}`)).toBe(true);
    expect(target.matches('ai_cache:stats')).toBe(false);
    expect(target.matches(`ai_cache:lock:collaboration:${hash}`)).toBe(false);
    const one = ns.invalidationTarget({ pattern: 'ai_cache:collaboration:a?a*' });
    expect(one.matches(`ai_cache:collaboration:${hash}`)).toBe(true);
    expect(one.matches(`ai_cache:collaboration:b${hash.slice(1)}`)).toBe(false);
  });

  it('turns a task type into a pattern, and intersects it with a pattern', () => {
    expect(ns.invalidationTarget({ task_type: 'collaboration' }).pattern).toBe('ai_cache:collaboration:*');
    const both = ns.invalidationTarget({ pattern: 'ai_cache:*', task_type: 'collaboration' });
    expect(both.matches(`ai_cache:collaboration:${hash}`)).toBe(true);
    expect(both.matches(`ai_cache:strategy_audit:${hash}`)).toBe(false);
  });

  it('reads the seed\'s `*` as every answer of the namespace, and nothing else', () => {
    const every = ns.invalidationTarget({ pattern: '*' });
    expect(every.pattern).toBe('ai_cache:*');
    expect(every.matches(`ai_cache:collaboration:${hash}`)).toBe(true);
    for (const other of ['ai_cache:stats', `ai_cache:lock:collaboration:${hash}`, `ai_cache:flight:collaboration:${hash}`, 'ws_session:s1']) {
      expect(every.matches(other), other).toBe(false);
    }
    expect(new CacheNamespace('tenant_b').invalidationTarget({ pattern: '*' }).pattern).toBe('tenant_b:*');
  });

  it('refuses patterns outside the namespace or with classes, escapes or other characters', () => {
    for (const pattern of [
      '**',
      '*:*',
      'ai_cache',
      'ai_cache:',
      'ai_cache:collaboration.*',
      'ai_cache:a.b',
      'ai_cache_other:*',
      'other:ai_cache:*',
      'ai_cache:[a-z]*',
      'ai_cache:\\*',
      'ai_cache:* ',
      'ai_cache:é',
      `ai_cache:${'x'.repeat(248)}`,
    ]) {
      expect(refusal(() => ns.invalidationTarget({ pattern })), pattern).toBe('invalid_pattern');
    }
    expect(refusal(() => ns.invalidationTarget({}))).toBe('validation_failed');
    expect(refusal(() => ns.invalidationTarget({ task_type: 'nope' as 'collaboration' }))).toBe('unknown_task_type');
  });
});

const entry: CacheEntry = {
  v: 1,
  response: 'An answer',
  suggestions: [],
  model: 'gpt-4o-mini',
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  cost_usd: 0,
  created_at: 0,
};

const answerKey = (prefix: string, message: string, taskType: 'collaboration' | 'strategy_audit') =>
  cacheKey(
    { task_type: taskType, mode: 'ally', model: 'm', prompt_version: '1', history: [], message, context: {}, scope: 'global' },
    prefix,
  );

/**
 * `POST /api/cache/invalidate?pattern=*` end to end on each backend: every answer goes; hit/miss counters,
 * flight locks and everything outside the namespace (WebSocket sessions) stay.
 */
describe.each(['memory', 'redis'] as const)('invalidating `*` on the %s backend', (backend) => {
  const prefix = `ai_cache_ns_${randomBytes(6).toString('hex')}`;
  const sessionKey = `ws_session:ns-test-${randomBytes(6).toString('hex')}`;
  let cache: { store: AnswerStore; lock: FlightLock; close(): Promise<void> };
  let admin: Redis | undefined;

  beforeAll(async () => {
    const metrics = createCacheMetrics(new Registry());
    const namespace = new CacheNamespace(prefix);
    if (backend === 'memory') {
      const store = new MemoryAnswerStore({ namespace, metrics });
      const lock = new MemoryFlightLock({ namespace });
      cache = { store, lock, close: async () => (await lock.close(), await store.close()) };
      return;
    }
    const connect = async (name: string): Promise<Redis> => {
      const r = createRedisClient({ url: REDIS_URL, name: `${prefix}-${name}`, commandTimeoutMs: 2_000 });
      if (r.status !== 'ready') await once(r, 'ready');
      return r;
    };
    admin = await connect('admin');
    const logger = createLogger({ service: 'cache-namespace-test', version: '0.0.0', level: 'silent', pretty: false });
    const guard = new RedisGuard(await connect('cache'), { metrics, logger }, { closeClient: true });
    const store = new RedisAnswerStore({ guard, namespace, metrics, logger });
    const lock = new RedisFlightLock({ guard, namespace, logger });
    cache = { store, lock, close: async () => (await lock.close(), await store.close(), await guard.close()) };
  });

  afterAll(async () => {
    await cache.close();
    if (admin === undefined) return;
    const [, keys] = await admin.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    await admin.unlink(sessionKey, ...keys);
    await admin.quit();
  });

  it('deletes every answer and keeps counters, locks and sessions', async () => {
    const answers = [answerKey(prefix, 'a', 'collaboration'), answerKey(prefix, 'b', 'strategy_audit')];
    for (const key of answers) expect(await cache.store.set(key, entry, 60)).toBe(true);
    expect(await cache.store.get(answers[0]!)).not.toBeNull();
    cache.store.count('miss');
    const locked = answerKey(prefix, 'in flight', 'collaboration');
    const lease = await cache.lock.acquire(locked, 30_000);
    expect(typeof lease).toBe('object');
    await admin?.set(sessionKey, '{"session_id":"s"}', 'EX', 60);

    expect(await cache.store.invalidate({ pattern: '*' })).toEqual({ pattern: `${prefix}:*`, deleted: 2 });

    for (const key of answers) expect(await cache.store.get(key, { record: false })).toBeNull();
    expect(await cache.lock.acquire(locked, 30_000)).toBe('busy');
    expect(await cache.store.stats()).toMatchObject({ hits: 1, misses: 1, total_keys: 0 });
    if (admin !== undefined) {
      expect(await admin.exists(`${prefix}:stats`, `${prefix}:lock:${locked.slice(prefix.length + 1)}`, sessionKey)).toBe(3);
    }
  });
});
