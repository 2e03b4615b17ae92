import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChatRequestSchema } from '@actionedx/shared';
import { counterSum, getJson, postJson, postSse, startStack, until, type ServiceProcess, type SseEvent, type Stack } from '@actionedx/testkit';
import { buildPrompt, TaskRegistry } from '../../services/orchestrator/src/tasks/index.js';

/**
 * Provider resilience with real processes: gateway, one orchestrator, two mock LLMs (A serves the `primary`
 * target, gpt-4o-mini; B the `backup`, gpt-4o), NATS and Redis. Faults are switched on the mocks at run time.
 */
describe('resilience: model targets with fallback, breakers, retry-after, hedging and exact cost', () => {
  let stack: Stack;
  let A: ServiceProcess;
  let B: ServiceProcess;
  let orchestrator: ServiceProcess | undefined;

  const unique = (what: string) => `${what} ${randomUUID()}`;
  const chat = (url: string) => `${url}/api/assistant/chat`;

  async function mock(m: ServiceProcess, config: Record<string, unknown>): Promise<void> {
    const res = await fetch(`${m.url}/mock/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(config) });
    expect(res.status).toBe(200);
  }
  const stats = async (m: ServiceProcess) => (await getJson(`${m.url}/mock/stats`)).body as { completions: number; client_disconnects: number; arrivals: number[] };
  const metric = async (name: string, filter?: (labels: string) => boolean) =>
    counterSum(await (await fetch(`${orchestrator!.url}/metrics`)).text(), name, filter);

  /** The routing every test here runs with, over the two mocks; `tune` changes a target or adds routes. */
  function targets(tune: { primary?: object; backup?: object; routes?: object } = {}) {
    return JSON.stringify({
      targets: {
        primary: {
          base_url: `${A.url}/v1`,
          model: 'gpt-4o-mini',
          max_retries: 0,
          first_token_timeout_ms: 800,
          stall_timeout_ms: 500,
          // Only the breaker test opens a breaker: here every fault must reach the fallback path.
          breaker: { failures: 100, min_calls: 1000 },
          ...tune.primary,
        },
        backup: { base_url: `${B.url}/v1`, model: 'gpt-4o', max_retries: 0, first_token_timeout_ms: 3000, stall_timeout_ms: 800, ...tune.backup },
      },
      routes: {
        realtime_tutoring: { targets: ['primary', 'backup'] },
        strategy_audit: { targets: ['primary', 'backup'], hedge_after_ms: 300 },
        collaboration: { targets: ['primary'] },
        ...tune.routes,
      },
    });
  }

  /** One orchestrator with this routing; the previous one is stopped first, so it alone takes the jobs. */
  async function useOrchestrator(modelTargets: string): Promise<void> {
    await orchestrator?.stop(2000);
    orchestrator = await stack.addOrchestrator({ MODEL_TARGETS: modelTargets });
  }

  /** What the backup (or any mock) answers when called directly with the prompt the orchestrator builds. */
  async function direct(m: ServiceProcess, model: string, body: Record<string, unknown>): Promise<string> {
    const req = ChatRequestSchema.parse(body);
    const task = new TaskRegistry().get(req.task_type);
    const client = new OpenAI({ baseURL: `${m.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const stream = await client.chat.completions.create(
      { model, messages: buildPrompt(req, task), max_tokens: task.maxTokens, stream: true },
      { headers: { 'x-mock-fault': 'none' } },
    );
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    return text;
  }

  const names = (events: SseEvent[]) => events.map((e) => e.event);
  const textAfterLastReset = (events: SseEvent[]) =>
    events
      .slice(names(events).lastIndexOf('reset') + 1)
      .filter((e) => e.event === 'chunk')
      .map((e) => e.data.content)
      .join('');

  beforeAll(async () => {
    stack = await startStack({ auth: 'open',  orchestrators: 0, mockLlms: 2, mockLlmEnv: { MOCK_LLM_COMPLETION_TOKENS: '24' } });
    [A, B] = stack.mockLlms as [ServiceProcess, ServiceProcess];
    await useOrchestrator(targets());
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });
  afterEach(async () => {
    for (const m of [A, B]) await mock(m, { fault: 'none', fault_rate: 1, fault_count: 0, ttft_ms: 0, tokens_per_second: 0, retry_after_s: 1 });
  });

  describe('fallback', () => {
    it.each(['server_error', 'hang', 'stall', 'rate_limit'])(
      'a failure before the first token (%s) moves to the next target invisibly: the whole answer from the fallback',
      async (fault) => {
        // retry-after 0: a rate limit here must not cool the target down for the tests that follow.
        await mock(A, { fault, retry_after_s: 0 });
        const body = { user_id: 'resilient', message: unique(`Explain spaced practice (${fault})`), use_cache: false };
        const { status, events } = await postSse(chat(stack.url), body);
        expect(status).toBe(200);
        expect(names(events)).not.toContain('reset');
        const done = events.at(-1)!;
        expect(done.event).toBe('done');
        expect(done.data.model).toBe('gpt-4o');
        expect(done.data.response).toBe(await direct(B, 'gpt-4o', body));
        expect(textAfterLastReset(events)).toBe(done.data.response);
      },
    );

    it.each(['cut', 'stall_mid', 'truncate', 'length'])(
      'a failure after the first chunk reached the client (%s): a reset, then the fallback\'s whole answer, byte for byte',
      async (fault) => {
        await mock(A, { fault, tokens_per_second: 200 });
        const body = { user_id: 'resilient', message: unique(`Explain interleaving (${fault})`), use_cache: false };
        const { status, events } = await postSse(chat(stack.url), body);
        expect(status).toBe(200);
        const seen = names(events);
        expect(seen).toContain('reset');
        expect(seen.indexOf('chunk')).toBeLessThan(seen.indexOf('reset'));
        const done = events.at(-1)!;
        expect(done.event).toBe('done');
        expect(done.data.model).toBe('gpt-4o');
        const fallback = await direct(B, 'gpt-4o', body);
        expect(textAfterLastReset(events)).toBe(fallback);
        expect(done.data.response).toBe(fallback);
      },
    );

    it('every target failing ends in a clear retryable error, never a hang or a partial answer presented as complete', async () => {
      await mock(A, { fault: 'cut' });
      await mock(B, { fault: 'server_error' });
      const rest = await postJson(chat(stack.url), { user_id: 'unlucky', message: unique('Anyone?'), use_cache: false });
      expect(rest.status).toBe(503);
      expect(rest.body.error).toMatchObject({ code: 'upstream_unavailable', retryable: true });
      const { events } = await postSse(chat(stack.url), { user_id: 'unlucky', message: unique('Anyone there?'), use_cache: false });
      expect(names(events)).not.toContain('done');
      expect(events.at(-1)).toMatchObject({ event: 'error', data: { error: { code: 'upstream_unavailable', retryable: true } } });
    });
  });

  describe('retry-after', () => {
    it('waits the retry-after before calling the same target again when it is the only one', async () => {
      await mock(A, { fault: 'rate_limit', fault_count: 1, retry_after_s: 1 });
      await useOrchestrator(targets({ primary: { max_retries: 1 } }));
      const res = await postJson(chat(stack.url), { user_id: 'patient', message: unique('Plan a lab'), task_type: 'collaboration', use_cache: false });
      expect(res.status).toBe(200);
      expect(res.body.model).toBe('gpt-4o-mini');
      const [first, second] = (await stats(A)).arrivals.slice(-2);
      expect(second! - first!).toBeGreaterThanOrEqual(950);
    });

    it('skips a rate-limited target for its retry-after while another answers, then uses it again', async () => {
      await mock(A, { fault: 'rate_limit', retry_after_s: 2 });
      const ask = async () => (await postJson(chat(stack.url), { user_id: 'patient', message: unique('Plan a field trip'), use_cache: false })).body;
      const calls = (await stats(A)).completions;
      expect((await ask()).model).toBe('gpt-4o');
      await mock(A, { fault: 'none' });
      expect((await ask()).model).toBe('gpt-4o');
      expect((await stats(A)).completions).toBe(calls + 1);
      await new Promise((r) => setTimeout(r, 2100));
      expect((await ask()).model).toBe('gpt-4o-mini');
    });
  });

  describe('circuit breaker', () => {
    beforeAll(async () => {
      await useOrchestrator(targets({ primary: { breaker: { failures: 2, cooldown_ms: 1500 } } }));
    });
    afterAll(async () => {
      await useOrchestrator(targets());
    });

    it('opens after repeated failures (the target is skipped), probes after the cool-down and closes', async () => {
      const ask = async () => (await postJson(chat(stack.url), { user_id: 'breaker', message: unique('Design a rubric'), use_cache: false })).body;
      const state = () => metric('ai_target_breaker_state', (l) => l.includes('target="primary"'));
      await mock(A, { fault: 'server_error' });
      const calls = (await stats(A)).completions;
      expect((await ask()).model).toBe('gpt-4o');
      expect((await ask()).model).toBe('gpt-4o');
      expect(await state()).toBe(2);
      expect((await ask()).model).toBe('gpt-4o');
      expect((await stats(A)).completions).toBe(calls + 2); // the third request never called it
      await mock(A, { fault: 'none' });
      await new Promise((r) => setTimeout(r, 1600));
      expect((await ask()).model).toBe('gpt-4o-mini'); // the probe
      expect(await state()).toBe(0);
      expect(await metric('ai_fallbacks_total', (l) => l.includes('reason="breaker_open"'))).toBeGreaterThanOrEqual(1);
    });
  });

  describe('hedging', () => {
    it('starts the next target when the first is slow: the faster wins, the slower sees its connection closed and is not billed', async () => {
      await mock(A, { ttft_ms: 5000 });
      await useOrchestrator(targets({ primary: { first_token_timeout_ms: 10_000 } }));
      const disconnects = (await stats(A)).client_disconnects;
      const miniTokens = await metric('ai_tokens_used_total', (l) => l.includes('model="gpt-4o-mini"'));
      const body = { user_id: 'hedger', message: unique('Summarise the unit'), task_type: 'strategy_audit', use_cache: false };
      const started = Date.now();
      const res = await postJson(chat(stack.url), body);
      expect(res.status).toBe(200);
      expect(res.body.model).toBe('gpt-4o');
      expect(Date.now() - started).toBeLessThan(4000);
      expect(res.body.response).toBe(await direct(B, 'gpt-4o', { ...body }));
      await until(async () => (await stats(A)).client_disconnects > disconnects, 5000, 'the slow mock to see its connection closed');
      expect(await metric('ai_hedges_total', (l) => l.includes('winner="hedge"'))).toBe(1);
      expect(await metric('ai_tokens_used_total', (l) => l.includes('model="gpt-4o-mini"'))).toBe(miniTokens);
      await useOrchestrator(targets());
    });
  });

  describe('usage and cost', () => {
    const priced = (usage: { prompt_tokens: number; completion_tokens: number }, input: number, output: number) =>
      Math.round(((usage.prompt_tokens * input + usage.completion_tokens * output) / 1_000_000) * 1e8) / 1e8;

    it('costs the usage of the final stream chunk times the price', async () => {
      const res = await postJson(chat(stack.url), { user_id: 'payer', message: unique('What is a learning objective?'), use_cache: false });
      expect(res.body.model).toBe('gpt-4o-mini');
      expect(res.body.usage.completion_tokens).toBeGreaterThan(24); // the mock's count: prose and suggestions
      expect(res.body.cost_usd).toBeGreaterThan(0);
      expect(res.body.cost_usd).toBe(priced(res.body.usage, 0.15, 0.6));
    });

    it('counts tokens with a tokenizer when the provider sends no usage: never cost 0, marked estimated', async () => {
      await mock(A, { fault: 'no_usage' });
      const before = await metric('ai_usage_estimated_total');
      const res = await postJson(chat(stack.url), { user_id: 'payer', message: unique('What is a success criterion?'), use_cache: false });
      expect(res.body.model).toBe('gpt-4o-mini');
      expect(res.body.usage.completion_tokens).toBe(countTokens(res.body.response));
      expect(res.body.usage.prompt_tokens).toBeGreaterThan(0);
      expect(res.body.cost_usd).toBeGreaterThan(0);
      expect(res.body.cost_usd).toBe(priced(res.body.usage, 0.15, 0.6));
      expect(await metric('ai_usage_estimated_total')).toBe(before + 1);
    });
  });
});
