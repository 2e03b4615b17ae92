import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authHeaders, counterSum, getJson, mockCompletions, postJson, postSse, type Stack, startStack, until } from '@actionedx/testkit';
import { defineApiSuite } from './api-suite.js';

const unique = (what: string) => `${what} ${randomUUID()}`;

describe('distributed: gateway, two orchestrators and mock-llm as processes on NATS and Redis', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ orchestrators: 2 });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  defineApiSuite(() => ({ url: stack.url, wsUrl: stack.wsUrl, auth: true }));

  it('makes one upstream call for 50 identical concurrent requests over two orchestrators', async () => {
    const before = await mockCompletions(stack.mockLlm.url);
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
    // Both replicas took part.
    const perWorker = await Promise.all(stack.orchestrators.map(async (o) => counterSum(await (await fetch(`${o.opsUrl}/metrics`)).text(), 'ai_requests_total')));
    expect(perWorker.every((n) => n > 0)).toBe(true);
  });

  it('cancels the upstream call when the client goes away', async () => {
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
    expect(health.body.dependencies.orchestrators.status).not.toBe('healthy');
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
