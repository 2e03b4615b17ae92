import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, authHeaders, getJson, postJson, redisDbForWorker, type Stack, startRedis, startStack, until } from '@actionedx/testkit';

const unique = (what: string) => `${what} ${randomUUID()}`;

describe('cache fails open when Redis goes away, and comes back by itself', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let stack: Stack;
  beforeAll(async () => {
    redis = await startRedis();
    stack = await startStack({
      orchestrators: 1,
      orchestratorEnv: { REDIS_URL: redis.url },
      // The limiter fails closed: it keeps its own Redis here, so that only the cache's goes away.
      gatewayEnv: { REDIS_URL: redis.url, LIMITER_REDIS_URL: `${process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'}/${redisDbForWorker()}` },
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await redis?.stop();
  });

  it('answers through the model while Redis is down, within the bound, then caches again', async () => {
    const body = { user_id: 'fo', message: unique('Is the cache there?') };
    const auth = await authHeaders('fo', { ttlS: 3_600 });
    await postJson(`${stack.url}/api/assistant/chat`, body, auth);
    expect((await postJson(`${stack.url}/api/assistant/chat`, body, auth)).body.cached).toBe(true);

    await redis.stop();
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      const res = await postJson(`${stack.url}/api/assistant/chat`, { ...body, message: `${body.message} ${i}` }, auth);
      expect(res.status).toBe(200);
      expect(res.body.cached).toBe(false);
      // The model answers in a few ms here; a cache that waited for Redis would add seconds.
      expect(Date.now() - started).toBeLessThan(1000);
    }
    const stats = await getJson(`${stack.url}/api/cache/stats`, adminHeaders());
    expect(stats.status).toBe(200);
    expect(stats.body.status).toBe('disconnected');
    const health = await getJson(`${stack.url}/api/cache/health`, adminHeaders());
    expect(health.body.status).toBe('disconnected');

    redis = await startRedis(redis.port);
    const again = { user_id: 'fo', message: unique('Back again?') };
    await until(
      async () => {
        await postJson(`${stack.url}/api/assistant/chat`, again, auth);
        return (await postJson(`${stack.url}/api/assistant/chat`, again, auth)).body.cached === true;
      },
      15_000,
      'caching to resume',
    );
    expect((await getJson(`${stack.url}/api/cache/stats`, adminHeaders())).body.status).toBe('connected');
  });
});

describe('TTL per task type, overridden by config', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ orchestrators: 1, orchestratorEnv: { CACHE_TTL_REALTIME_TUTORING: '1' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('expires an answer after its task type TTL, and keeps others', async () => {
    const auth = await authHeaders('ttl');
    const tutoring = { user_id: 'ttl', message: unique('short-lived'), task_type: 'realtime_tutoring' };
    const audit = { user_id: 'ttl', message: unique('long-lived'), task_type: 'strategy_audit' };
    await postJson(`${stack.url}/api/assistant/chat`, tutoring, auth);
    await postJson(`${stack.url}/api/assistant/chat`, audit, auth);
    expect((await postJson(`${stack.url}/api/assistant/chat`, tutoring, auth)).body.cached).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await postJson(`${stack.url}/api/assistant/chat`, tutoring, auth)).body.cached).toBe(false);
    expect((await postJson(`${stack.url}/api/assistant/chat`, audit, auth)).body.cached).toBe(true);
  });
});
