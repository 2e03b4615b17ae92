import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  counterSum,
  createApiKey,
  mockStats,
  setMock,
  startService,
  startStack,
  testAuthEnv,
  until,
  type ServiceProcess,
  type Stack,
} from '@actionedx/testkit';

interface Target {
  /** The gateway's public URL. */
  url: string;
  /** Its ops port (/metrics). */
  opsUrl: string;
  /** The mock LLM behind it (PUT /mock/config, /mock/stats). */
  mockUrl: string;
}

const question = (topic: string) => `${topic} ${randomUUID()}: how do I plan a unit on fractions?`;

async function text(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>): Promise<{
  content: string;
  chunks: OpenAI.Chat.Completions.ChatCompletionChunk[];
}> {
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  return { content: chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), chunks };
}

/**
 * The OpenAI-compatible API driven by the official `openai` SDK, as any tool built on it would: the same
 * cases against the distributed stack and the embedded mode, both with authentication required (an API key).
 */
function defineOpenAiSuite(target: () => Target): void {
  let client: OpenAI;
  beforeAll(async () => {
    const { key } = await createApiKey(target().url, { user_id: `oai-${randomUUID().slice(0, 8)}` });
    client = new OpenAI({ apiKey: key, baseURL: `${target().url}/v1`, maxRetries: 0, timeout: 15_000 });
  });

  it('lists the task-type aliases and the models the routing allows', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(['actionedx/strategy_audit', 'actionedx/realtime_tutoring', 'gpt-4o', 'gpt-4o-mini']));
    const one = await client.models.retrieve('actionedx/ethical_assessment');
    expect(one).toMatchObject({ id: 'actionedx/ethical_assessment', object: 'model' });
  });

  it('answers a completion, then the same one from the cache (x-cache miss, then hit), with usage and RateLimit headers', async () => {
    const params = {
      model: 'actionedx/realtime_tutoring',
      messages: [
        { role: 'system' as const, content: 'Answer for a teacher.' },
        { role: 'user' as const, content: 'Earlier question' },
        { role: 'assistant' as const, content: 'Earlier answer' },
        { role: 'user' as const, content: question('non-stream') },
      ],
      max_tokens: 300,
      temperature: 0.2,
      user: 'end-user-1',
    };
    const first = await client.chat.completions.create(params).withResponse();
    expect(first.response.headers.get('x-cache')).toBe('miss');
    expect(first.response.headers.get('ratelimit')).toMatch(/"requests";r=\d+/);
    expect(first.data.object).toBe('chat.completion');
    expect(first.data.choices).toHaveLength(1);
    expect(first.data.choices[0]!.message.content!.length).toBeGreaterThan(10);
    expect(first.data.choices[0]!.finish_reason).toBe('stop');
    expect(first.data.usage!.total_tokens).toBeGreaterThan(0);

    const second = await client.chat.completions.create(params).withResponse();
    expect(second.response.headers.get('x-cache')).toBe('hit');
    expect(second.data.choices[0]!.message.content).toBe(first.data.choices[0]!.message.content);
    expect((second.data as unknown as { actionedx: { cached: boolean } }).actionedx.cached).toBe(true);

    const bypass = await client.chat.completions.create(params, { headers: { 'x-cache-bypass': '1' } }).withResponse();
    expect(bypass.response.headers.get('x-cache')).toBe('miss');
    // A lower token cap reaches the model, and is another cache entry.
    const capped = await client.chat.completions.create({ ...params, max_tokens: undefined, max_completion_tokens: 8 }).withResponse();
    expect(capped.response.headers.get('x-cache')).toBe('miss');
    expect(capped.data.usage!.completion_tokens).toBeLessThanOrEqual(8);
    expect(capped.data.choices[0]!.finish_reason).toBe('length');
  });

  it('streams chat.completion.chunks with the usage last (include_usage); a cached answer streams too', async () => {
    const params = {
      model: 'gpt-4o',
      messages: [{ role: 'user' as const, content: question('stream') }],
      stream: true as const,
      stream_options: { include_usage: true },
    };
    const live = await client.chat.completions.create(params).withResponse();
    expect(live.response.headers.get('x-cache')).toBe('miss');
    const a = await text(live.data);
    expect(a.content.length).toBeGreaterThan(10);
    expect(a.chunks[0]!.object).toBe('chat.completion.chunk');
    expect(a.chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const last = a.chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.total_tokens).toBeGreaterThan(0);
    expect(a.chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop');

    const cached = await client.chat.completions.create(params).withResponse();
    expect(cached.response.headers.get('x-cache')).toBe('hit');
    const b = await text(cached.data);
    expect(b.content).toBe(a.content);
    expect(b.chunks.at(-1)!.usage).toMatchObject({ total_tokens: 0 });

    const noUsage = await text(await client.chat.completions.create({ ...params, stream_options: undefined }));
    expect(noUsage.content).toBe(a.content);
    expect(noUsage.chunks.every((c) => c.choices.length === 1 && c.usage == null)).toBe(true);
  });

  it('answers errors in OpenAI shape: unknown model 404, n=2 400, bad key 401, unknown URL 404', async () => {
    const messages = [{ role: 'user' as const, content: 'Hello' }];
    const notFound = await client.chat.completions.create({ model: 'no-such-model', messages }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
    expect(notFound).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });

    const twoChoices = await client.chat.completions.create({ model: 'actionedx/collaboration', messages, n: 2 }).catch((e: unknown) => e);
    expect(twoChoices).toBeInstanceOf(OpenAI.BadRequestError);
    expect(twoChoices).toMatchObject({ status: 400, param: 'n', type: 'invalid_request_error' });

    const stranger = new OpenAI({ apiKey: 'axk_0000000000000000_not-a-key', baseURL: `${target().url}/v1`, maxRetries: 0 });
    const denied = await stranger.chat.completions.create({ model: 'actionedx/collaboration', messages }).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(denied).toMatchObject({ status: 401, code: 'invalid_api_key' });

    const noKey = await fetch(`${target().url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'actionedx/collaboration', messages }),
    });
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toMatchObject({ error: { code: 'invalid_api_key', type: 'invalid_request_error', param: null } });

    const unknown = await fetch(`${target().url}/v1/embeddings`, { method: 'POST' });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 'unknown_url' } });

    const metrics = await (await fetch(`${target().opsUrl}/metrics`)).text();
    const counted = (status: string) =>
      counterSum(metrics, 'http_requests_total', (l) => l.includes('route="/v1/chat/completions"') && l.includes(`status="${status}"`));
    expect(counted('401')).toBeGreaterThanOrEqual(1);
    expect(counted('404')).toBeGreaterThanOrEqual(1);
    expect(counted('200')).toBeGreaterThanOrEqual(1);
  });

  it('makes one model call for identical concurrent requests: x-cache miss for one, coalesced for the other', async () => {
    const { mockUrl } = target();
    await setMock(mockUrl, { ttft_ms: 600 });
    try {
      const before = (await mockStats(mockUrl)).completions;
      const params = { model: 'actionedx/collaboration', messages: [{ role: 'user' as const, content: question('together') }] };
      const both = await Promise.all([client.chat.completions.create(params).withResponse(), client.chat.completions.create(params).withResponse()]);
      expect(both.map((r) => r.response.headers.get('x-cache')).sort()).toEqual(['coalesced', 'miss']);
      expect(both[0].data.choices[0]!.message.content).toBe(both[1].data.choices[0]!.message.content);
      expect((await mockStats(mockUrl)).completions - before).toBe(1);
    } finally {
      await setMock(mockUrl, { ttft_ms: 0 });
    }
  });

  it('cancels the model call when the client aborts mid-stream', async () => {
    const { mockUrl, opsUrl } = target();
    await setMock(mockUrl, { tokens_per_second: 20, completion_tokens: 400 });
    try {
      const before = await mockStats(mockUrl);
      const controller = new AbortController();
      const stream = await client.chat.completions.create(
        { model: 'actionedx/strategy_audit', messages: [{ role: 'user', content: question('abort') }], stream: true },
        { signal: controller.signal },
      );
      let pieces = 0;
      let finished = false;
      // The SDK ends the iteration quietly when its own signal aborts it.
      for await (const c of stream) {
        if (c.choices[0]?.delta.content) pieces += 1;
        if (c.choices[0]?.finish_reason) finished = true;
        if (pieces === 2) controller.abort();
      }
      expect(finished).toBe(false);
      expect(pieces).toBe(2);
      // The gateway cancelled the request, and the worker stopped the model call it was paying for.
      await until(async () => (await mockStats(mockUrl)).client_disconnects > before.client_disconnects, 10_000, 'the model call to be cut');
      await until(
        async () => counterSum(await (await fetch(`${opsUrl}/metrics`)).text(), 'gateway_chat_outcomes_total', (l) => l.includes('outcome="cancelled"')) >= 1,
        5_000,
        'a cancelled outcome',
      );
    } finally {
      await setMock(mockUrl, { tokens_per_second: 0, completion_tokens: 60 });
    }
  });
}

describe('OpenAI-compatible API on the distributed stack (NATS, Redis, orchestrator processes)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ orchestrators: 1 });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });
  defineOpenAiSuite(() => ({ url: stack.url, opsUrl: stack.gateway.opsUrl, mockUrl: stack.mockLlm.url }));
});

describe('OpenAI-compatible API in the embedded mode (npm start)', () => {
  let app: ServiceProcess;
  let mockUrl: string;
  beforeAll(async () => {
    app = await startService('embedded', testAuthEnv());
    const line = app.logs.find((l) => l.msg === 'listening');
    // The embedded mock LLM's address, as the start line tells it ("mock LLM at http://127.0.0.1:<port>/v1 ...").
    mockUrl = /mock LLM at (http:\/\/\S+?)(\/v1)?\s/.exec(String(line?.model))![1]!;
  }, 30_000);
  afterAll(async () => {
    await app?.stop();
  });
  defineOpenAiSuite(() => ({ url: app.url, opsUrl: app.opsUrl, mockUrl }));
});
