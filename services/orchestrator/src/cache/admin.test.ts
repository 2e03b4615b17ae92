import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AdminReplySchema,
  CacheHealthSchema,
  CacheStatsSchema,
  InProcessBus,
  Subjects,
  createCacheMetrics,
  createLogger,
  createRedisClient,
  decodeJson,
  encodeJson,
  type AdminReply,
} from '@actionedx/shared';
import { registerCacheAdmin } from './admin.js';
import { cacheKey } from './cache-key.js';
import type { AnswerStore, CacheEntry } from './answer-store.js';
import { CacheNamespace } from './cache-namespace.js';
import { MemoryAnswerStore } from './memory-answer-store.js';
import { RedisAnswerStore } from './redis-answer-store.js';
import { RedisGuard } from './redis-guard.js';

const memoryStore = () => new MemoryAnswerStore({ namespace: new CacheNamespace(), metrics: createCacheMetrics(new Registry()) });

const logger = createLogger({ service: 'cache-admin-test', version: 'test', level: 'silent' });

const entry: CacheEntry = {
  v: 1,
  response: 'Aligned on all three loops.',
  suggestions: [],
  model: 'gpt-4o',
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  cost_usd: 0,
  created_at: 0,
};

const key = (message: string) =>
  cacheKey({
    task_type: 'framework_alignment',
    mode: 'strategist',
    model: 'gpt-4o',
    prompt_version: '1',
    history: [],
    message,
    context: {},
    scope: 'global',
  });

describe('cache administration over the bus', () => {
  let bus: InProcessBus;
  let cache: AnswerStore;
  let stop: () => void;

  const ask = async (subject: string, body: unknown): Promise<AdminReply> => {
    const data = typeof body === 'string' ? new TextEncoder().encode(body) : encodeJson(body);
    const reply = await bus.request(subject, data, { timeoutMs: 5_000 });
    return decodeJson(AdminReplySchema, reply.data);
  };

  beforeEach(() => {
    bus = new InProcessBus();
    cache = memoryStore();
    stop = registerCacheAdmin(bus, cache, logger);
  });

  afterEach(async () => {
    stop();
    await cache.close();
    await bus.close();
  });

  it('answers stats with the cache figures', async () => {
    await cache.set(key('one'), entry, 60);
    await cache.get(key('one'));
    const reply = await ask(Subjects.cacheStats, {});
    expect(reply.ok).toBe(true);
    const stats = CacheStatsSchema.parse(reply.ok && reply.data);
    expect(stats).toMatchObject({ backend: 'memory', hits: 1, total_keys: 1, keys_by_task_type: { framework_alignment: 1 } });
  });

  it('answers health', async () => {
    const reply = await ask(Subjects.cacheHealth, {});
    expect(CacheHealthSchema.parse(reply.ok && reply.data)).toMatchObject({ status: 'memory', backend: 'memory' });
  });

  it('invalidates by task type and by pattern', async () => {
    await cache.set(key('a'), entry, 60);
    await cache.set(key('b'), entry, 60);
    expect(await ask(Subjects.cacheInvalidate, { task_type: 'framework_alignment' })).toEqual({
      ok: true,
      data: { pattern: 'ai_cache:framework_alignment:*', deleted: 2 },
    });
    expect(await ask(Subjects.cacheInvalidate, { pattern: 'ai_cache:*' })).toEqual({
      ok: true,
      data: { pattern: 'ai_cache:*', deleted: 0 },
    });
  });

  it('refuses a bad pattern, a malformed request and a request without a target', async () => {
    expect(await ask(Subjects.cacheInvalidate, { pattern: 'sessions:*' })).toMatchObject({
      ok: false,
      error: { code: 'invalid_pattern', retryable: false },
    });
    expect(await ask(Subjects.cacheInvalidate, { pattern: 'ai_cache:[ab]*' })).toMatchObject({
      ok: false,
      error: { code: 'invalid_pattern' },
    });
    expect(await ask(Subjects.cacheInvalidate, {})).toMatchObject({ ok: false, error: { code: 'invalid_message' } });
    expect(await ask(Subjects.cacheInvalidate, { task_type: 'poetry' })).toMatchObject({
      ok: false,
      error: { code: 'invalid_message' },
    });
    expect(await ask(Subjects.cacheStats, 'not json')).toMatchObject({ ok: false, error: { code: 'invalid_message' } });
  });

  it('answers in the orchestrators queue group: one reply per request, however many replicas', async () => {
    const other = memoryStore();
    const stopOther = registerCacheAdmin(bus, other, logger);
    const replies: unknown[] = [];
    const inbox = 'test.inbox';
    const sub = bus.subscribe(inbox, (m) => replies.push(m));
    for (let i = 0; i < 4; i++) bus.publish(Subjects.cacheHealth, encodeJson({}), { reply: inbox });
    await new Promise((r) => setTimeout(r, 100));
    expect(replies).toHaveLength(4);
    sub.unsubscribe();
    stopOther();
    await other.close();
  });

  it('stops answering once unsubscribed', async () => {
    stop();
    await expect(bus.request(Subjects.cacheStats, encodeJson({}), { timeoutMs: 1_000 })).rejects.toMatchObject({ name: 'BusNoRespondersError', code: 'no_workers' });
  });

  it('reports a cache whose Redis is unreachable as retryable cache_unavailable, and its stats as disconnected', async () => {
    // Nothing listens on port 1: the client never connects, every call fails open at once.
    const redis = createRedisClient({ url: 'redis://127.0.0.1:1', name: 'cache-admin-test-down' });
    const metrics = createCacheMetrics(new Registry());
    const guard = new RedisGuard(redis, { metrics, logger }, { closeClient: true });
    const down = new RedisAnswerStore({ guard, namespace: new CacheNamespace(), metrics, logger });
    stop();
    stop = registerCacheAdmin(bus, down, logger);
    try {
      expect(await ask(Subjects.cacheInvalidate, { pattern: 'ai_cache:*' })).toEqual({
        ok: false,
        error: { code: 'cache_unavailable', message: 'The cache is unavailable.', retryable: true },
      });
      const stats = await ask(Subjects.cacheStats, {});
      expect(stats).toMatchObject({ ok: true, data: { status: 'disconnected', backend: 'redis' } });
      expect(await ask(Subjects.cacheHealth, {})).toMatchObject({ ok: true, data: { status: 'disconnected' } });
    } finally {
      await down.close();
      await guard.close();
    }
  });
});
