import OpenAI from 'openai';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AppError, createAiMetrics, createLogger, createMetricsRegistry, TASK_TYPES } from '@actionedx/shared';
import { createMockLlm, type ListeningMockLlm, type MockLlm } from '@actionedx/mock-llm';
import type { PromptMessage } from '../tasks/index.js';
import { ModelRouter } from './model-router.js';
import { createRouterMetrics } from './router-metrics.js';
import { resolveRouting } from './targets-config.js';

/** The router over two real mock LLMs (HTTP, the openai SDK), with short timeouts. */
describe('ModelRouter', () => {
  let a: { mock: MockLlm; server: ListeningMockLlm };
  let b: { mock: MockLlm; server: ListeningMockLlm };
  const registry = createMetricsRegistry('orchestrator', { defaultMetrics: false });
  const metrics = createRouterMetrics(registry);
  const upstreamErrors = createAiMetrics(registry).upstreamErrors;
  const logger = createLogger({ service: 'orchestrator', version: 'test', level: 'silent' });
  const messages: PromptMessage[] = [
    { role: 'system', content: 'Be brief. End with "Suggestions:" and two lines starting with "- ".' },
    { role: 'user', content: 'How do I plan a unit?' },
  ];

  beforeAll(async () => {
    const start = async () => {
      const mock = createMockLlm({ completionTokens: 12 });
      return { mock, server: await mock.listen(0) };
    };
    a = await start();
    b = await start();
  });
  afterAll(async () => {
    await a.server.close();
    await b.server.close();
  });
  afterEach(() => {
    for (const m of [a.mock, b.mock]) m.setDefaults({ fault: 'none', faultRate: 1, faultCount: 0, ttftMs: 0, tokensPerSecond: 0, retryAfterS: 1 });
  });

  const root = (s: ListeningMockLlm) => s.url.replace(/\/v1$/, '');
  const stats = async (s: ListeningMockLlm) =>
    (await (await fetch(`${root(s)}/mock/stats`)).json()) as { completions: number; client_disconnects: number; arrivals: number[] };

  /** A router whose realtime_tutoring route is `route` over targets `a` (gpt-4o-mini on A) and `b` (gpt-4o on B). */
  function router(route: Record<string, unknown>, tune: Record<string, unknown> = {}, random?: () => number) {
    const targets = {
      a: { base_url: a.server.url, model: 'gpt-4o-mini', max_retries: 0, first_token_timeout_ms: 300, stall_timeout_ms: 200, ...tune },
      b: { base_url: b.server.url, model: 'gpt-4o', max_retries: 0, first_token_timeout_ms: 2000, stall_timeout_ms: 300 },
    };
    const routing = resolveRouting(
      { MODEL_TARGETS: JSON.stringify({ targets, routes: { realtime_tutoring: route } }) },
      { models: Object.fromEntries(TASK_TYPES.map((t) => [t, 'gpt-4o'])) as never, apiKey: undefined, timeoutMs: 5000, maxRetries: 0 },
    );
    return new ModelRouter(routing, { metrics, upstreamErrors, logger, defaultBaseUrl: b.server.url, ...(random ? { random } : {}) });
  }

  /** Runs one routed request and records what its receiver saw. */
  async function ask(r: ModelRouter, opts: { accept?: (text: string) => boolean; signal?: AbortSignal } = {}) {
    const events: string[] = [];
    let text = '';
    const completion = await r.complete({
      taskType: 'realtime_tutoring',
      messages,
      maxTokens: 600,
      signal: opts.signal ?? new AbortController().signal,
      onDelta: (d) => {
        if (events.at(-1) !== 'delta') events.push('delta');
        text += d;
      },
      onReset: () => {
        events.push('reset');
        text = '';
      },
      ...(opts.accept ? { accept: (c: { text: string }) => opts.accept!(c.text) } : {}),
    });
    return { completion, events, text };
  }

  /** What B answers when called directly: the answer the fallback must reproduce byte for byte. */
  async function direct(model = 'gpt-4o', server = b.server): Promise<string> {
    const client = new OpenAI({ baseURL: server.url, apiKey: 'x', maxRetries: 0 });
    const res = await client.chat.completions.create({ model, messages, max_tokens: 600 });
    return res.choices[0]!.message.content!;
  }

  /** Sum of a metric's series whose labels include `labels`. */
  const counter = async (name: string, labels: Record<string, string>) =>
    (await registry.getSingleMetric(name)!.get()).values
      .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
      .reduce((sum, v) => sum + v.value, 0);

  it('answers from the first target when it works', async () => {
    const { completion, events, text } = await ask(router({ targets: ['a', 'b'] }));
    expect(completion).toMatchObject({ target: 'a', model: 'gpt-4o-mini', usageEstimated: false, finishReason: 'stop' });
    expect(events).toEqual(['delta']);
    expect(text).toBe(await direct('gpt-4o-mini', a.server));
  });

  it.each(['server_error', 'rate_limit', 'hang', 'stall'] as const)('moves on invisibly when the first target fails before its first token (%s)', async (fault) => {
    a.mock.setDefaults({ fault });
    const { completion, events, text } = await ask(router({ targets: ['a', 'b'] }));
    expect(completion).toMatchObject({ target: 'b', model: 'gpt-4o' });
    expect(events).toEqual(['delta']);
    expect(text).toBe(await direct());
  });

  it.each(['cut', 'stall_mid', 'truncate'] as const)('resets and sends the next target\'s whole answer when the first fails mid-stream (%s)', async (fault) => {
    a.mock.setDefaults({ fault });
    const before = await counter('ai_fallbacks_total', { target: 'a', phase: 'mid_stream' });
    const { completion, events, text } = await ask(router({ targets: ['a', 'b'] }));
    expect(events).toEqual(['delta', 'reset', 'delta']);
    expect(completion.target).toBe('b');
    expect(text).toBe(await direct());
    expect(await counter('ai_fallbacks_total', { target: 'a', phase: 'mid_stream' })).toBe(before + 1);
  });

  it('ends with a clear retryable error when every target fails, never a partial answer', async () => {
    a.mock.setDefaults({ fault: 'cut' });
    b.mock.setDefaults({ fault: 'stall_mid' });
    const r = router({ targets: ['a', 'b'] });
    const err = await ask(r).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'upstream_unavailable', retryable: true, status: 503 });
    expect((err as Error).message).toContain('stalled');
  });

  it('opens a breaker after repeated failures, skips the target, then probes and closes it', async () => {
    const r = router({ targets: ['a', 'b'] }, { breaker: { failures: 2, cooldown_ms: 300 } });
    a.mock.setDefaults({ fault: 'server_error' });
    const calls = (await stats(a.server)).completions;
    await ask(r);
    await ask(r);
    expect(r.breakerStates().a).toBe('open');
    const third = await ask(r);
    expect(third.completion.target).toBe('b');
    expect((await stats(a.server)).completions).toBe(calls + 2); // skipped, not called
    a.mock.setDefaults({ fault: 'none' });
    await new Promise((res) => setTimeout(res, 320));
    expect(r.breakerStates().a).toBe('half_open');
    expect((await ask(r)).completion.target).toBe('a');
    expect(r.breakerStates().a).toBe('closed');
  });

  it('waits the retry-after it was given before trying the same target again', async () => {
    a.mock.setDefaults({ fault: 'rate_limit', faultCount: 1, retryAfterS: 0.4 });
    const { completion } = await ask(router({ targets: ['a'] }, { max_retries: 1 }));
    expect(completion.target).toBe('a');
    const [first, second] = (await stats(a.server)).arrivals.slice(-2);
    expect(second! - first!).toBeGreaterThanOrEqual(380);
  });

  it('skips a rate-limited target for its retry-after when another can answer', async () => {
    const r = router({ targets: ['a', 'b'] }, { max_retries: 1 });
    a.mock.setDefaults({ fault: 'rate_limit', retryAfterS: 0.5 });
    const calls = (await stats(a.server)).completions;
    expect((await ask(r)).completion.target).toBe('b');
    a.mock.setDefaults({ fault: 'none' });
    expect((await ask(r)).completion.target).toBe('b'); // cooling down
    expect((await stats(a.server)).completions).toBe(calls + 1);
    await new Promise((res) => setTimeout(res, 520));
    expect((await ask(r)).completion.target).toBe('a');
  });

  it('hedges a slow first target: the faster one wins and the other is aborted', async () => {
    a.mock.setDefaults({ ttftMs: 3000 });
    const disconnects = (await stats(a.server)).client_disconnects;
    const before = await counter('ai_hedges_total', { target: 'a', winner: 'hedge' });
    const { completion, events, text } = await ask(router({ targets: ['a', 'b'], hedge_after_ms: 100 }, { first_token_timeout_ms: 10_000 }));
    expect(completion.target).toBe('b');
    expect(events).toEqual(['delta']);
    expect(text).toBe(await direct());
    await expect.poll(async () => (await stats(a.server)).client_disconnects).toBe(disconnects + 1);
    expect(await counter('ai_hedges_total', { target: 'a', winner: 'hedge' })).toBe(before + 1);
  });

  it('gives an answer that fails the quality check one more try on the next target', async () => {
    a.mock.setDefaults({ fault: 'length' });
    const accept = (t: string) => !t.endsWith(' ') && t.includes('Suggestions:');
    const { completion, events, text } = await ask(router({ targets: ['a', 'b'] }), { accept });
    expect(events).toEqual(['delta', 'reset', 'delta']);
    expect(completion.target).toBe('b');
    expect(text).toBe(await direct());
  });

  it('serves the refused answer again when the next target fails too', async () => {
    a.mock.setDefaults({ fault: 'length' });
    b.mock.setDefaults({ fault: 'server_error' });
    const { completion, text } = await ask(router({ targets: ['a', 'b'] }), { accept: () => false });
    expect(completion.target).toBe('a');
    expect(completion.finishReason).toBe('length');
    expect(text).toBe(completion.text);
  });

  it('counts tokens with a tokenizer when the provider sends no usage, and says so', async () => {
    a.mock.setDefaults({ fault: 'no_usage' });
    const { completion } = await ask(router({ targets: ['a'] }));
    expect(completion.usageEstimated).toBe(true);
    expect(completion.usage.completion_tokens).toBe(countTokens(completion.text));
    expect(completion.usage.prompt_tokens).toBeGreaterThan(10);
    expect(completion.usage.total_tokens).toBe(completion.usage.prompt_tokens + completion.usage.completion_tokens);
  }, 15_000);

  it('splits traffic between weighted neighbours in proportion, each the other\'s fallback', async () => {
    const route = { targets: [{ target: 'a', weight: 3 }, { target: 'b', weight: 1 }] };
    expect((await ask(router(route, {}, () => 0.7))).completion.target).toBe('a'); // 0.7 × 4 = 2.8 < 3
    expect((await ask(router(route, {}, () => 0.8))).completion.target).toBe('b'); // 3.2 ≥ 3
    a.mock.setDefaults({ fault: 'server_error' });
    expect((await ask(router(route, {}, () => 0.1))).completion.target).toBe('b');
  });

  it('stops every call when the request is aborted', async () => {
    a.mock.setDefaults({ ttftMs: 2000 });
    const controller = new AbortController();
    const disconnects = (await stats(a.server)).client_disconnects;
    setTimeout(() => controller.abort(new AppError('cancelled')), 100);
    await expect(ask(router({ targets: ['a', 'b'] }, { first_token_timeout_ms: 10_000 }), { signal: controller.signal })).rejects.toMatchObject({ code: 'cancelled' });
    await expect.poll(async () => (await stats(a.server)).client_disconnects).toBe(disconnects + 1);
    expect((await stats(b.server)).completions).toBeGreaterThanOrEqual(0);
  });
});
