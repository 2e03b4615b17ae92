import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createLogger, createMetricsRegistry, createRedisClient, type Redis } from '@actionedx/shared';
import {
  FakeWorker,
  TestSocket,
  answerWith,
  authHeaders,
  authRequiredConfig,
  bearer,
  createApiKey,
  metricValue,
  mintToken,
  startTestGateway,
  type TestGateway,
} from '@actionedx/testkit';
import { createGatewayMetrics } from '../metrics.js';
import { GATEWAY_VERSION } from '../version.js';
import { Admission, AdmissionRefusal } from './admission.js';
import { DEFAULT_ROLE_LIMITS, type CallerLimits } from './limits.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger({ service: 'gateway', version: GATEWAY_VERSION, level: 'silent', pretty: false });

let gw: TestGateway | undefined;
const workers: FakeWorker[] = [];
const sockets: TestSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) await s.close();
  for (const w of workers.splice(0)) w.stop();
  await gw?.close();
  gw = undefined;
});

/** A gateway with authentication on and these user limits (memory limiter unless `limiterRedis`). */
async function gateway(limits: Partial<CallerLimits>, deps: { limiterRedis?: Redis } = {}): Promise<TestGateway> {
  gw = await startTestGateway({ ...authRequiredConfig({ RATE_LIMITS: JSON.stringify({ user: limits }) }) }, deps);
  return gw;
}

const chat = async (headers: Record<string, string>, body: Record<string, unknown> = {}) =>
  fetch(`${gw!.baseUrl}/api/assistant/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ message: `q ${randomUUID()}`, ...body }),
  });

/** `{name: {param: value}}` of a structured-field list like `"requests";r=2;t=60, "tokens";r=5`. */
function sfList(value: string | null): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const item of (value ?? '').split(/,\s*/)) {
    const [name, ...params] = item.split(';');
    out[JSON.parse(name!)] = Object.fromEntries(params.map((p) => p.split('=') as [string, string]));
  }
  return out;
}

describe('rate limits (per user, per minute)', () => {
  it('puts RateLimit-Policy and RateLimit (draft -10) on every answer, then refuses with 429, Retry-After and a code', async () => {
    await gateway({ requests_per_minute: 3 });
    workers.push(new FakeWorker(gw!.bus, { script: answerWith(['ok']) }));
    const alice = await authHeaders('alice');
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await chat(alice);
      expect(res.status).toBe(200);
      const policy = sfList(res.headers.get('ratelimit-policy'));
      expect(policy.requests).toEqual({ q: '3', w: '60' });
      expect(policy.tokens).toEqual({ q: String(DEFAULT_ROLE_LIMITS.user.tokens_per_minute), qu: '"tokens"', w: '60' });
      expect(policy.daily_spend).toMatchObject({ qu: '"usd_micros"', w: '86400' });
      const now = sfList(res.headers.get('ratelimit'));
      remaining.push(now.requests!.r!);
      expect(Number(now.requests!.t)).toBeGreaterThan(0);
      expect(Number(now.requests!.t)).toBeLessThanOrEqual(60);
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const refused = await chat(alice);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(sfList(refused.headers.get('ratelimit')).requests!.r).toBe('0');
    expect(await refused.json()).toMatchObject({
      error: { code: 'rate_limited', retryable: true, details: { limit: 'requests', retry_after_s: retryAfter } },
    });
    // Someone else is counted apart.
    expect((await chat(await authHeaders('bob'))).status).toBe(200);
    expect(workers[0]!.jobs).toHaveLength(4);
    expect(await metricValue(gw!.registry, 'gateway_rate_limited_total', { kind: 'requests' })).toBe(1);
  });

  it('counts a WebSocket turn like a request, and refuses it with an error frame of the same code', async () => {
    await gateway({ requests_per_minute: 1 });
    workers.push(new FakeWorker(gw!.bus, { script: answerWith(['ok']) }));
    const ws = await TestSocket.open(`${gw!.wsUrl}/ws/assistant/s-rl`, await authHeaders('alice'));
    sockets.push(ws);
    ws.send({ message: 'one' });
    await ws.until('response');
    ws.send({ message: 'two' });
    expect(await ws.next()).toMatchObject({ type: 'error', code: 'rate_limited', retryable: true, details: { limit: 'requests', retry_after_s: expect.any(Number) } });
    expect((await chat(await authHeaders('alice'))).status).toBe(429);
  });

  it("counts an API key apart from its user's other credentials, with the key's own limits", async () => {
    await gateway({ requests_per_minute: 5 });
    workers.push(new FakeWorker(gw!.bus, { script: answerWith(['ok']) }));
    const key = await createApiKey(gw!.baseUrl, { user_id: 'alice', limits: { requests_per_minute: 1 } });
    expect((await chat(bearer(key.key))).status).toBe(200);
    const refused = await chat(bearer(key.key));
    expect(refused.status).toBe(429);
    expect(sfList(refused.headers.get('ratelimit-policy')).requests).toEqual({ q: '1', w: '60' });
    expect((await chat(await authHeaders('alice'))).status).toBe(200);
  });
});

describe('model tokens per minute and the daily budget, charged from real usage', () => {
  it("charges each answer's tokens (REST, SSE and WebSocket) and refuses the next call once the minute's tokens are used", async () => {
    await gateway({ tokens_per_minute: 40 });
    // Each answer reports 15 tokens.
    workers.push(new FakeWorker(gw!.bus, { script: answerWith(['ok']) }));
    const alice = await authHeaders('alice');
    expect((await chat(alice)).status).toBe(200);
    const sse = await chat({ ...alice, accept: 'text/event-stream' });
    expect(sse.status).toBe(200);
    await sse.text();
    const ws = await TestSocket.open(`${gw!.wsUrl}/ws/assistant/s-tok`, alice);
    sockets.push(ws);
    ws.send({ message: 'three' });
    await ws.until('response');
    // 45 tokens charged, over 40: refused until the minute is over.
    await expect.poll(async () => (await chat(alice)).status).toBe(429);
    const refused = await chat(alice);
    expect(await refused.json()).toMatchObject({ error: { code: 'token_rate_limited', details: { limit: 'tokens' } } });
    expect(sfList(refused.headers.get('ratelimit')).tokens!.r).toBe('0');
    ws.send({ message: 'four' });
    expect(await ws.next()).toMatchObject({ type: 'error', code: 'token_rate_limited' });
    expect(await metricValue(gw!.registry, 'gateway_rate_limited_total', { kind: 'tokens' })).toBeGreaterThanOrEqual(2);
  });

  it('charges an answer in the turn after it is written (the answer goes out first), and then in full', async () => {
    const metrics = createGatewayMetrics(createMetricsRegistry('gateway', { defaultMetrics: false }));
    const admission = new Admission({ kind: 'memory' }, { metrics, logger });
    const subject = { key: `user:${randomUUID()}`, limits: { ...DEFAULT_ROLE_LIMITS.user, tokens_per_minute: 50 } };
    const tokensLeft = async () => sfList((await admission.admit(subject)).headers.RateLimit ?? null).tokens!.r;
    (await admission.admit(subject)).charge({ cached: false, usage: { total_tokens: 20 }, cost_usd: 0 });
    // The in-memory limiter answers within this turn: the charge has not been made yet.
    expect(await tokensLeft()).toBe('50');
    await new Promise((r) => setImmediate(r));
    expect(await tokensLeft()).toBe('30');
  });

  it('charges cached answers nothing', async () => {
    await gateway({ tokens_per_minute: 20, daily_budget_usd: 0.0002 });
    workers.push(
      new FakeWorker(gw!.bus, {
        script: (ctl) => {
          ctl.chunk('cached');
          ctl.done({ cached: true, cost_usd: 0 });
        },
      }),
    );
    const alice = await authHeaders('alice');
    for (let i = 0; i < 5; i++) expect((await chat(alice)).status).toBe(200);
    expect(sfList((await chat(alice)).headers.get('ratelimit')).tokens!.r).toBe('20');
  });

  it('refuses with budget_exceeded once the day’s spend (cost_usd) reaches the budget, until UTC midnight', async () => {
    await gateway({ daily_budget_usd: 0.00025 });
    // Each answer costs $0.0001.
    workers.push(new FakeWorker(gw!.bus, { script: answerWith(['ok']) }));
    const alice = await authHeaders('alice');
    for (let i = 0; i < 3; i++) expect((await chat(alice)).status).toBe(200);
    await expect.poll(async () => (await chat(alice)).status).toBe(429);
    const refused = await chat(alice);
    const body = (await refused.json()) as { error: { code: string; details: { retry_after_s: number } } };
    expect(body.error.code).toBe('budget_exceeded');
    const untilMidnight = 86_400 - (Math.floor(Date.now() / 1000) % 86_400);
    expect(Math.abs(body.error.details.retry_after_s - untilMidnight)).toBeLessThanOrEqual(5);
    expect(sfList(refused.headers.get('ratelimit-policy')).daily_spend!.q).toBe('250');
  });
});

async function redisAnswers(url: string): Promise<Redis | undefined> {
  const client = createRedisClient({ url, name: 'gateway-admission-test', commandTimeoutMs: 1_000 });
  try {
    await new Promise<void>((resolve, reject) => {
      if (client.status === 'ready') return resolve();
      client.once('ready', () => resolve());
      setTimeout(() => reject(new Error('no redis')), 1_500);
    });
    return client;
  } catch {
    client.disconnect();
    return undefined;
  }
}

const redis = await redisAnswers(REDIS_URL);

describe.skipIf(redis === undefined)('in Redis, shared by replicas (real Redis)', () => {
  afterAll(() => redis?.disconnect());

  it('holds a quota exactly when two admission layers (two replicas) take from it at once', async () => {
    const make = () => {
      const metrics = createGatewayMetrics(createMetricsRegistry('gateway', { defaultMetrics: false }));
      return new Admission({ kind: 'redis', redis: redis! }, { metrics, logger });
    };
    const [a, b] = [make(), make()];
    const subject = { key: `user:${randomUUID()}`, limits: { ...DEFAULT_ROLE_LIMITS.user, requests_per_minute: 7 } };
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).admit(subject)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(7);
    for (const r of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
      expect(r.reason).toBeInstanceOf(AdmissionRefusal);
      expect((r.reason as AdmissionRefusal).code).toBe('rate_limited');
    }
    // Charged on one replica, seen by the other (at its next lease: within a second).
    const tokens = { key: `user:${randomUUID()}`, limits: { ...DEFAULT_ROLE_LIMITS.user, tokens_per_minute: 100 } };
    (await a.admit(tokens)).charge({ cached: false, usage: { total_tokens: 100 }, cost_usd: 0 });
    await expect.poll(async () => (await b.admit(tokens).catch((e: AdmissionRefusal) => e.code)) === 'token_rate_limited', { timeout: 3_000, interval: 100 }).toBe(true);
  });

  it('reads every counter in one script as the in-memory limiter counts them: the same headers, the same refusals, the budget too', async () => {
    const metrics = createGatewayMetrics(createMetricsRegistry('gateway', { defaultMetrics: false }));
    const sides = { memory: new Admission({ kind: 'memory' }, { metrics, logger }), redis: new Admission({ kind: 'redis', redis: redis! }, { metrics, logger }) };
    const limits = { ...DEFAULT_ROLE_LIMITS.user, requests_per_minute: 4, tokens_per_minute: 50, daily_budget_usd: 0.000_02 };
    /** What each call of a fixed sequence gave: its remaining counts, or the code it was refused with. */
    const run = async (admission: Admission) => {
      const subject = { key: `user:${randomUUID()}`, limits };
      const seen: string[] = [];
      const step = async (cost?: { tokens: number; usd: number }) => {
        try {
          const ticket = await admission.admit(subject);
          const now = sfList(ticket.headers.RateLimit ?? null);
          seen.push(`ok r=${now.requests!.r} tok=${now.tokens!.r} usd=${now.daily_spend!.r} t<=60:${Number(now.tokens!.t) <= 60}`);
          if (cost) ticket.charge({ cached: false, usage: { total_tokens: cost.tokens }, cost_usd: cost.usd });
        } catch (err) {
          seen.push(`refused ${(err as AdmissionRefusal).code} ${(err as AdmissionRefusal).kind}`);
        }
        // Charges are sent in the background: let them land before the next read.
        await new Promise((r) => setTimeout(r, 30));
      };
      await step({ tokens: 20, usd: 0.000_005 });
      await step({ tokens: 20, usd: 0.000_005 });
      await step();
      await step({ tokens: 20, usd: 0.000_015 });
      await step(); // the fifth call: over 4 a minute, and over tokens and budget too (requests are checked first)
      return seen;
    };
    const [memory, inRedis] = [await run(sides.memory), await run(sides.redis)];
    expect(inRedis).toEqual(memory);
    expect(memory).toEqual([
      'ok r=3 tok=50 usd=20 t<=60:true',
      'ok r=2 tok=30 usd=15 t<=60:true',
      'ok r=1 tok=10 usd=10 t<=60:true',
      'ok r=0 tok=10 usd=10 t<=60:true',
      'refused rate_limited requests',
    ]);
    // Over the budget alone: a fresh minute's requests, but today's spend is gone.
    const subject = { key: `user:${randomUUID()}`, limits };
    (await sides.redis.admit(subject)).charge({ cached: false, usage: { total_tokens: 1 }, cost_usd: 0.000_02 });
    await expect.poll(async () => (await sides.redis.admit(subject).catch((e: AdmissionRefusal) => e.code)) === 'budget_exceeded').toBe(true);
  });

  it('refuses with limiter_unavailable (503) when its Redis does not answer, and counts it', async () => {
    const dead = createRedisClient({ url: 'redis://127.0.0.1:1', name: 'gateway-test-dead', connectTimeoutMs: 100 });
    try {
      const g = await startTestGateway({ ...authRequiredConfig() }, { limiterRedis: dead });
      gw = g;
      workers.push(new FakeWorker(g.bus, { script: answerWith(['never']) }));
      const res = await chat(await authHeaders('alice'));
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: { code: 'limiter_unavailable', retryable: true } });
      expect(workers[0]!.jobs).toHaveLength(0);
      expect(await metricValue(g.registry, 'gateway_limiter_errors_total', { operation: 'admit' })).toBe(1);
      // A WebSocket needs a slot, which needs the limiter too.
      await expect(TestSocket.open(`${g.wsUrl}/ws/assistant/s-dead?access_token=${await mintToken('alice')}`)).rejects.toThrow(/HTTP 503/);
      expect(await metricValue(g.registry, 'gateway_limiter_errors_total', { operation: 'connection' })).toBe(1);
    } finally {
      dead.disconnect();
    }
  });
});
