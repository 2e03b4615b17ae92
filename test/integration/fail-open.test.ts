import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson, type Stack, startRedis, startStack, until } from '@actionedx/testkit';

const unique = (what: string) => `${what} ${randomUUID()}`;

describe('cache fails open when Redis goes away, and comes back by itself', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let stack: Stack;
  beforeAll(async () => {
    redis = await startRedis();
    stack = await startStack({
      orchestrators: 1,
      orchestratorEnv: { REDIS_URL: redis.url },
      gatewayEnv: { REDIS_URL: redis.url },
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await redis?.stop();
  });

  it('answers through the model while Redis is down, within the bound, then caches again', async () => {
    const body = { user_id: 'fo', message: unique('Is the cache there?') };
    await postJson(`${stack.url}/api/assistant/chat`, body);
    expect((await postJson(`${stack.url}/api/assistant/chat`, body)).body.cached).toBe(true);

    await redis.stop();
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      const res = await postJson(`${stack.url}/api/assistant/chat`, { ...body, message: `${body.message} ${i}` });
      expect(res.status).toBe(200);
      expect(res.body.cached).toBe(false);
      // The model answers in a few ms here; a cache that waited for Redis would add seconds.
      expect(Date.now() - started).toBeLessThan(1000);
    }
    const stats = await getJson(`${stack.url}/api/cache/stats`);
    expect(stats.status).toBe(200);
    expect(stats.body.status).toBe('disconnected');
    const health = await getJson(`${stack.url}/api/cache/health`);
    expect(health.body.status).toBe('disconnected');

    redis = await startRedis(redis.port);
    const again = { user_id: 'fo', message: unique('Back again?') };
    await until(
      async () => {
        await postJson(`${stack.url}/api/assistant/chat`, again);
        return (await postJson(`${stack.url}/api/assistant/chat`, again)).body.cached === true;
      },
      15_000,
      'caching to resume',
    );
    expect((await getJson(`${stack.url}/api/cache/stats`)).body.status).toBe('connected');
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
    const tutoring = { user_id: 'ttl', message: unique('short-lived'), task_type: 'realtime_tutoring' };
    const audit = { user_id: 'ttl', message: unique('long-lived'), task_type: 'strategy_audit' };
    await postJson(`${stack.url}/api/assistant/chat`, tutoring);
    await postJson(`${stack.url}/api/assistant/chat`, audit);
    expect((await postJson(`${stack.url}/api/assistant/chat`, tutoring)).body.cached).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await postJson(`${stack.url}/api/assistant/chat`, tutoring)).body.cached).toBe(false);
    expect((await postJson(`${stack.url}/api/assistant/chat`, audit)).body.cached).toBe(true);
  });
});
