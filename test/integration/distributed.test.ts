import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient, TASK_TYPES, type Redis, type TaskType } from '@actionedx/shared';
import { authHeaders, counterSum, getJson, mockCompletions, postJson as post, postSse as postStream, type Stack, startStack, until } from '@actionedx/testkit';
import { defineApiSuite } from './api-suite.js';

const unique = (what: string) => `${what} ${randomUUID()}`;

/** The user a body names: this stack requires authentication, so calls carry that user's token unless told otherwise. */
const userOf = (body: unknown): string => String((body as { user_id?: unknown }).user_id ?? 'anonymous');
const postJson = async (url: string, body: unknown, headers?: Record<string, string>) => post(url, body, headers ?? (await authHeaders(userOf(body))));
const postSse = async (url: string, body: unknown, opts: Parameters<typeof postStream>[2] = {}) =>
  postStream(url, body, { ...opts, headers: opts.headers ?? (await authHeaders(userOf(body))) });

/** Changes mock-llm's behaviour (PUT /mock/config) for the duration of `body`, then puts the old one back. */
async function withMockConfig<T>(mockLlmUrl: string, patch: Record<string, unknown>, body: () => Promise<T>): Promise<T> {
  const put = (config: unknown) =>
    fetch(`${mockLlmUrl}/mock/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(config) });
  const previous = (await getJson(`${mockLlmUrl}/mock/config`)).body as Record<string, unknown>;
  expect((await put(patch)).status).toBe(200);
  try {
    return await body();
  } finally {
    await put(previous);
  }
}

/** ai_requests_total of each orchestrator, from its own /metrics. */
const requestsPerWorker = (stack: Stack) =>
  Promise.all(stack.orchestrators.map(async (o) => counterSum(await (await fetch(`${o.opsUrl}/metrics`)).text(), 'ai_requests_total')));

/** The seed's TTLs (24 h, 30 min, 1 h, 2 h, 12 h), but collaboration's, which this stack sets to 90 min by config. */
const CONFIGURED_TTLS: Record<TaskType, number> = {
  strategy_audit: 86_400,
  realtime_tutoring: 1_800,
  collaboration: 5_400,
  framework_alignment: 7_200,
  ethical_assessment: 43_200,
};

describe('distributed: gateway, two orchestrators and mock-llm as processes on NATS and Redis', () => {
  let stack: Stack;
  /** The stack's Redis database, to read what the cache stored. */
  let redis: Redis;
  beforeAll(async () => {
    // A stream whose client left runs on for RESUME_GRACE_MS (it may be resumed), then is cancelled: short here.
    stack = await startStack({
      orchestrators: 2,
      orchestratorEnv: { CACHE_TTL_COLLABORATION: String(CONFIGURED_TTLS.collaboration) },
      gatewayEnv: { RESUME_GRACE_MS: '500' },
    });
    redis = createRedisClient({ url: stack.redisUrl, name: 'distributed-test', commandTimeoutMs: 2_000 });
    if (redis.status !== 'ready') await once(redis, 'ready');
  }, 60_000);
  afterAll(async () => {
    redis?.disconnect();
    await stack?.stop();
  });

  /** The answer keys of a task type stored since `before` (a set of the keys there were then), once there are `count`. */
  async function newKeys(taskType: TaskType, before: Set<string>, count: number): Promise<string[]> {
    let added: string[] = [];
    // The answer leaves before it is stored: wait for the store.
    await until(async () => (added = (await redis.keys(`ai_cache:${taskType}:*`)).filter((k) => !before.has(k))).length >= count, 5_000, `${count} new ${taskType} keys`);
    return added;
  }
  const keysOf = async (taskType: TaskType) => new Set(await redis.keys(`ai_cache:${taskType}:*`));

  defineApiSuite(() => ({ url: stack.url, wsUrl: stack.wsUrl, auth: true }));

  it("keeps a strategy audit to its user across replicas: alice's repeat is cached, bob's same question is not, under another key", async () => {
    const message = unique('Audit our strategy against the 9 pillars');
    const before = await keysOf('strategy_audit');
    const calls = await mockCompletions(stack.mockLlm.url);
    const alice = await postJson(`${stack.url}/api/strategy-audit`, { user_id: 'alice', message });
    const [aliceKey] = await newKeys('strategy_audit', before, 1);
    const again = await postJson(`${stack.url}/api/strategy-audit`, { user_id: 'alice', message });
    const bob = await postJson(`${stack.url}/api/strategy-audit`, { user_id: 'bob', message });
    expect([alice.status, again.status, bob.status]).toEqual([200, 200, 200]);
    expect(alice.body).toMatchObject({ task_type: 'strategy_audit', cached: false });
    expect(again.body).toMatchObject({ cached: true, response: alice.body.response });
    expect(bob.body).toMatchObject({ task_type: 'strategy_audit', cached: false });
    const keys = await newKeys('strategy_audit', before, 2);
    expect(keys).toHaveLength(2);
    expect(keys.filter((k) => k !== aliceKey)).toHaveLength(1);
    expect((await mockCompletions(stack.mockLlm.url)) - calls).toBe(2);
  });

  it("shares a tutoring answer across replicas: bob's same question is answered from alice's entry", async () => {
    const body = { message: unique('What is formative assessment?'), task_type: 'realtime_tutoring' };
    const alice = await postJson(`${stack.url}/api/assistant/chat`, { user_id: 'alice', ...body });
    // Whichever replica bob reaches finds alice's entry, or waits on her flight lock and then finds it.
    const bob = await postJson(`${stack.url}/api/assistant/chat`, { user_id: 'bob', ...body });
    expect(alice.body.cached).toBe(false);
    expect(bob.body).toMatchObject({ cached: true, response: alice.body.response });
  });

  it('stores every task type in Redis with the TTL configured for it', async () => {
    for (const task_type of TASK_TYPES) {
      const before = await keysOf(task_type);
      const res = await postJson(`${stack.url}/api/assistant/chat`, { user_id: 'ttl', message: unique('How long is this kept?'), task_type });
      expect(res.status).toBe(200);
      const [key] = await newKeys(task_type, before, 1);
      const ttl = await redis.ttl(key!);
      // Read within seconds of the store: a TTL of another task type is hours away.
      expect(ttl, task_type).toBeLessThanOrEqual(CONFIGURED_TTLS[task_type]);
      expect(ttl, task_type).toBeGreaterThan(CONFIGURED_TTLS[task_type] - 60);
    }
  });

  it('never caches an answer cut at max_tokens (finish_reason length): each ask calls the model', async () => {
    // realtime_tutoring answers in at most 600 tokens: 700 words of prose are cut there.
    await withMockConfig(stack.mockLlm.url, { completion_tokens: 700 }, async () => {
      const body = { user_id: 'long', message: unique('Tell me everything'), task_type: 'realtime_tutoring' };
      const before = await keysOf('realtime_tutoring');
      const calls = await mockCompletions(stack.mockLlm.url);
      const first = await postJson(`${stack.url}/api/assistant/chat`, body);
      const second = await postJson(`${stack.url}/api/assistant/chat`, body);
      for (const r of [first, second]) {
        expect(r.status).toBe(200);
        expect(r.body).toMatchObject({ cached: false, usage: { completion_tokens: 600 } });
      }
      expect((await mockCompletions(stack.mockLlm.url)) - calls).toBe(2);
      expect([...(await keysOf('realtime_tutoring'))].filter((k) => !before.has(k))).toEqual([]);
    });
  });

  it('makes one upstream call for 50 identical concurrent requests over two orchestrators', async () => {
    const before = await mockCompletions(stack.mockLlm.url);
    const servedBefore = await requestsPerWorker(stack);
    const body = { user_id: 'stampede', message: unique('Same question from everyone'), task_type: 'realtime_tutoring' };
    // A slow first token keeps the first call in flight while the others arrive.
    await fetch(`${stack.mockLlm.url}/mock/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ttft_ms: 300 }) });
    try {
      const headers = await authHeaders('stampede');
      const results = await Promise.all(Array.from({ length: 50 }, () => postJson(`${stack.url}/api/assistant/chat`, body, headers)));
      expect(results.every((r) => r.status === 200)).toBe(true);
      expect(new Set(results.map((r) => r.body.response)).size).toBe(1);
      expect(results.filter((r) => !r.body.cached).length).toBe(1);
    } finally {
      await fetch(`${stack.mockLlm.url}/mock/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ttft_ms: 0 }) });
    }
    expect((await mockCompletions(stack.mockLlm.url)) - before).toBe(1);
    // Both replicas took part in this stampede (NATS spreads a queue group's 50 jobs at random).
    const servedAfter = await requestsPerWorker(stack);
    expect(servedAfter.map((n, i) => n - servedBefore[i]!).every((n) => n > 0)).toBe(true);
  });

  it('cancels the upstream call when the client goes away (after the resume grace)', async () => {
    const statsBefore = (await getJson(`${stack.mockLlm.url}/mock/stats`)).body;
    const controller = new AbortController();
    let chunks = 0;
    // A slow stream (20 tokens/s), set before the request so the answer cannot finish before the client leaves.
    await fetch(`${stack.mockLlm.url}/mock/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tokens_per_second: 20 }) });
    try {
      await postSse(
        `${stack.url}/api/assistant/chat`,
        { user_id: 'leaver', message: unique('A long answer please'), use_cache: false },
        {
          signal: controller.signal,
          headers: await authHeaders('leaver'),
          onEvent: (e) => {
            if (e.event === 'chunk' && ++chunks === 1) controller.abort();
          },
        },
      ).catch(() => undefined);
      await until(async () => (await getJson(`${stack.mockLlm.url}/mock/stats`)).body.client_disconnects > statsBefore.client_disconnects, 5000, 'mock-llm to see the connection closed');
    } finally {
      await fetch(`${stack.mockLlm.url}/mock/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tokens_per_second: 0 }) });
    }
    expect(chunks).toBeGreaterThanOrEqual(1);
  });
});

describe('distributed: no orchestrator running', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ orchestrators: 0 });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers 503 no_workers at once', async () => {
    const started = Date.now();
    const res = await postJson(`${stack.url}/api/assistant/chat`, { user_id: 'u', message: 'anyone?' }, await authHeaders('u'));
    expect(res.status).toBe(503);
    expect(res.body.error).toMatchObject({ code: 'no_workers', retryable: true });
    // "At once": well before the ack timeout (1 s here) would have fired twice.
    expect(Date.now() - started).toBeLessThan(1500);
    const health = await getJson(`${stack.url}/api/health`);
    expect(health.body.status).toBe('degraded');
    expect(health.body.dependencies.orchestrators).toMatchObject({ status: 'unreachable', workers_reachable: false, latency_ms: null });
  });
});

describe('distributed: an orchestrator killed mid-stream', () => {
  let stack: Stack;
  beforeAll(async () => {
    // 40 tokens at 40 per second: a stream of about a second, long enough to kill its worker mid-way.
    stack = await startStack({ orchestrators: 2, mockLlmEnv: { MOCK_LLM_TOKENS_PER_SECOND: '40', MOCK_LLM_COMPLETION_TOKENS: '40' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('completes the answer on the other orchestrator, after a reset', async () => {
    const body = { user_id: 'survivor', message: unique('Walk me through the tri-core loop'), use_cache: false };
    let killed = '';
    const headers = await authHeaders('survivor');
    const { status, events } = await postSse(`${stack.url}/api/assistant/chat`, body, {
      headers,
      onEvent: (e) => {
        if (e.event !== 'chunk' || killed) return;
        killed = 'pending';
        void (async () => {
          for (const o of stack.orchestrators) {
            const text = await (await fetch(`${o.opsUrl}/metrics`)).text();
            if (counterSum(text, 'ai_requests_in_flight') > 0) {
              o.kill('SIGKILL');
              killed = o.name;
              return;
            }
          }
        })();
      },
    });
    expect(status).toBe(200);
    expect(killed).toMatch(/orchestrator/);
    const names = events.map((e) => e.event);
    expect(names).toContain('reset');
    expect(names.at(-1)).toBe('done');
    const afterReset = events.slice(names.lastIndexOf('reset') + 1).filter((e) => e.event === 'chunk');
    const done = events.at(-1)!.data;
    expect(afterReset.map((c) => c.data.content).join('')).toBe(done.response);
    // The whole answer: the same text a fresh call produces for the same prompt.
    const fresh = await postJson(`${stack.url}/api/assistant/chat`, body, headers);
    expect(done.response).toBe(fresh.body.response);
  });
});

describe('distributed: one orchestrator, identical requests sharing one model call', () => {
  let stack: Stack;
  beforeAll(async () => {
    // One replica, so that the three requests share one flight (on two, a leaving client may be the only one of its
    // replica, whose model call then stops and the other replica starts its own).
    stack = await startStack({ orchestrators: 1 });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('finishes the shared model call for the two that stay when one client leaves', async () => {
    // A slow stream (50 tokens/s, about a second), so the answer is far from done when the client leaves.
    await withMockConfig(stack.mockLlm.url, { tokens_per_second: 50 }, async () => {
      const statsBefore = (await getJson(`${stack.mockLlm.url}/mock/stats`)).body;
      const body = { user_id: 'flock', message: unique('One answer for the three of us') };
      const chunks = [0, 0, 0];
      const leaving = new AbortController();
      const onChunk = (i: number) => () => {
        chunks[i]! += 1;
        // Every request follows the flight once it got a chunk: then the first one leaves.
        if (chunks.every((n) => n > 0) && !leaving.signal.aborted) leaving.abort();
      };
      const sse = (i: number, signal?: AbortSignal) =>
        postSse(`${stack.url}/api/assistant/chat`, body, { ...(signal ? { signal } : {}), onEvent: (e) => e.event === 'chunk' && onChunk(i)() });
      const left = sse(0, leaving.signal).then(
        () => 'finished',
        () => 'left',
      );
      const stayed = await Promise.all([sse(1), sse(2)]);
      expect(await left).toBe('left');
      for (const { status, events } of stayed) {
        expect(status).toBe(200);
        const names = events.map((e) => e.event);
        expect(names.at(-1)).toBe('done');
        expect(names).not.toContain('reset');
        const done = events.at(-1)!.data;
        expect(events.filter((e) => e.event === 'chunk').map((e) => e.data.content).join('')).toBe(done.response);
        expect(done.response).toMatch(/Suggestions:\n- /);
      }
      expect(stayed[1].events.at(-1)!.data.response).toBe(stayed[0].events.at(-1)!.data.response);
      const statsAfter = (await getJson(`${stack.mockLlm.url}/mock/stats`)).body;
      expect(statsAfter.completions - statsBefore.completions).toBe(1);
      // The model call ran to its end: the model server never saw its client leave.
      expect(statsAfter.client_disconnects).toBe(statsBefore.client_disconnects);
    });
  });
});
