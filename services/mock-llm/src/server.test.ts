import OpenAI from 'openai';
import type { ChatCompletionChunk, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '@actionedx/shared';
import type { MockStats } from './completion.js';
import { createMockLlm, type ListeningMockLlm, type MockLlm } from './server.js';

const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'How should we sequence the algebra unit?' }];
const model = 'gpt-4o';

let mock: MockLlm;
let server: ListeningMockLlm;
let client: OpenAI;

beforeEach(async () => {
  mock = createMockLlm({}, { registry: createMetricsRegistry('mock-llm', { defaultMetrics: false }) });
  server = await mock.listen(0);
  client = new OpenAI({ baseURL: server.url, apiKey: 'test', maxRetries: 0, timeout: 5_000 });
});
afterEach(() => server.close());

const root = () => server.url.replace(/\/v1$/, '');
const getJson = async <T>(path: string): Promise<T> => (await fetch(root() + path)).json() as Promise<T>;
const stats = () => getJson<MockStats>('/mock/stats');
const metricsText = async () => (await fetch(`${root()}/metrics`)).text();
const postCompletion = (body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${server.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

/** Sum of a counter over all its label sets, optionally only the series whose labels contain `match`. */
async function counter(name: string, match = ''): Promise<number> {
  return (await metricsText())
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && line.includes(match))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}
const textOf = (chunks: ChatCompletionChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
const finishReasons = (chunks: ChatCompletionChunk[]) => chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean);
const streamOf = (headers: Record<string, string> = {}, extra: { model?: string; signal?: AbortSignal } = {}) =>
  client.chat.completions.create(
    { model: extra.model ?? model, messages, stream: true },
    { headers, ...(extra.signal ? { signal: extra.signal } : {}) },
  );

describe('chat completions', () => {
  it('answers with text and usage', async () => {
    const res = await client.chat.completions.create({ model, messages });
    expect(res.object).toBe('chat.completion');
    expect(res.model).toBe(model);
    expect(res.choices[0]?.message.role).toBe('assistant');
    expect(res.choices[0]?.finish_reason).toBe('stop');
    expect(res.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(res.usage).toEqual({ prompt_tokens: 7, completion_tokens: 48, total_tokens: 55 });
  });

  it('streams the same text as the JSON answer, one token per event, role first and finish last', async () => {
    const json = await client.chat.completions.create({ model, messages });
    const chunks = await collect(await streamOf());
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    expect(textOf(chunks)).toBe(json.choices[0]?.message.content);
    expect(chunks.filter((c) => c.choices[0]?.delta.content)).toHaveLength(48);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('stop');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.usage === undefined)).toBe(true);
  });

  it('is deterministic per prompt and differs between prompts', async () => {
    const answer = async (content: string) =>
      (await client.chat.completions.create({ model, messages: [{ role: 'user', content }] })).choices[0]?.message
        .content;
    expect(await answer('Plan a reading week')).toBe(await answer('Plan a reading week'));
    expect(await answer('Plan a reading week')).not.toBe(await answer('Plan a maths week'));
  });

  it('sends usage in a last chunk without choices when include_usage is set', async () => {
    const stream = await client.chat.completions.create({
      model,
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = await collect(stream);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual({ prompt_tokens: 7, completion_tokens: 48, total_tokens: 55 });
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('stop');
  });

  it('caps the answer at max_tokens / max_completion_tokens with finish_reason length', async () => {
    const json = await client.chat.completions.create({ model, messages, max_tokens: 5 });
    expect(json.usage?.completion_tokens).toBe(5);
    expect(json.choices[0]?.finish_reason).toBe('length');
    const chunks = await collect(
      await client.chat.completions.create({ model, messages, stream: true, max_completion_tokens: 4 }),
    );
    expect(chunks.filter((c) => c.choices[0]?.delta.content)).toHaveLength(4);
    expect(finishReasons(chunks)).toEqual(['length']);
  });

  it('ends with suggestion lines only when the system prompt asks for Suggestions:', async () => {
    const asked = await client.chat.completions.create({
      model,
      messages: [{ role: 'system', content: 'Answer, then end with Suggestions: and 2-3 lines.' }, ...messages],
    });
    const text = asked.choices[0]?.message.content ?? '';
    expect(text).toMatch(/\n\nSuggestions:\n- .+\n- .+(\n- .+)?$/);
    expect(asked.usage?.completion_tokens).toBeGreaterThan(48);
    const plain = await client.chat.completions.create({ model, messages });
    expect(plain.choices[0]?.message.content).not.toContain('Suggestions:');
  });

  it('takes the answer length and timing from headers', async () => {
    const started = performance.now();
    let firstTokenAt = 0;
    const stream = await streamOf({
      'x-mock-ttft-ms': '120',
      'x-mock-tokens-per-second': '100',
      'x-mock-completion-tokens': '6',
    });
    const chunks: ChatCompletionChunk[] = [];
    for await (const c of stream) {
      if (c.choices[0]?.delta.content && firstTokenAt === 0) firstTokenAt = performance.now();
      chunks.push(c);
    }
    const ended = performance.now();
    expect(chunks.filter((c) => c.choices[0]?.delta.content)).toHaveLength(6);
    expect(firstTokenAt - started).toBeGreaterThanOrEqual(110);
    // Five gaps of 10 ms after the first token.
    expect(ended - firstTokenAt).toBeGreaterThanOrEqual(45);
  });

  it('refuses a body without messages, an empty list and bad JSON with an OpenAI-style 400', async () => {
    const res = await postCompletion({ model });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'invalid_request' } });
    await expect(client.chat.completions.create({ model, messages: [] })).rejects.toBeInstanceOf(
      OpenAI.BadRequestError,
    );
    const badJson = await fetch(`${server.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":',
    });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { error: { message: string } }).error.message).toBeTruthy();
  });

  it('refuses unknown faults and bad timing headers', async () => {
    expect((await postCompletion({ model, messages }, { 'x-mock-fault': 'explode' })).status).toBe(400);
    expect((await postCompletion({ model, messages }, { 'x-mock-ttft-ms': '-1' })).status).toBe(400);
    expect((await postCompletion({ model: 'mock-fault-nope', messages })).status).toBe(400);
  });
});

describe('faults', () => {
  it('rate_limit answers 429 with retry-after, by header or by model name', async () => {
    const byHeader = client.chat.completions.create({ model, messages }, { headers: { 'x-mock-fault': 'rate_limit' } });
    const err = await byHeader.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).status).toBe(429);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after')).toBe('1');
    await expect(
      client.chat.completions.create({ model: 'mock-fault-rate_limit', messages }),
    ).rejects.toBeInstanceOf(OpenAI.RateLimitError);
  });

  it('server_error answers 500, for streams too', async () => {
    const err = await client.chat.completions
      .create({ model: 'mock-fault-server_error', messages })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as InstanceType<typeof OpenAI.InternalServerError>).status).toBe(500);
    await expect(streamOf({ 'x-mock-fault': 'server_error' })).rejects.toBeInstanceOf(OpenAI.InternalServerError);
  });

  it('cut sends half the tokens then drops the connection, so the stream throws', async () => {
    const stream = await streamOf({ 'x-mock-fault': 'cut', 'x-mock-completion-tokens': '10' });
    const seen: ChatCompletionChunk[] = [];
    await expect(
      (async () => {
        for await (const c of stream) seen.push(c);
      })(),
    ).rejects.toThrow();
    expect(seen.filter((c) => c.choices[0]?.delta.content)).toHaveLength(5);
    expect(finishReasons(seen)).toEqual([]);
    await expect(
      client.chat.completions.create({ model, messages }, { headers: { 'x-mock-fault': 'cut' } }),
    ).rejects.toThrow();
    expect((await stats()).client_disconnects).toBe(0);
  });

  it('truncate ends the stream cleanly after half the tokens, without finish_reason or [DONE]', async () => {
    const chunks = await collect(await streamOf({ 'x-mock-fault': 'truncate', 'x-mock-completion-tokens': '10' }));
    expect(chunks.filter((c) => c.choices[0]?.delta.content)).toHaveLength(5);
    expect(finishReasons(chunks)).toEqual([]);
    const raw = await (await postCompletion({ model, messages, stream: true }, { 'x-mock-fault': 'truncate' })).text();
    expect(raw).not.toContain('[DONE]');
    // The JSON answer is cut in half too, so it can never be taken for a whole one.
    await expect(
      client.chat.completions.create({ model, messages }, { headers: { 'x-mock-fault': 'truncate' } }),
    ).rejects.toThrow();
  });

  it('stall sends the role chunk then nothing; aborting closes the connection and counts a disconnect', async () => {
    const controller = new AbortController();
    const stream = await streamOf({ 'x-mock-fault': 'stall' }, { signal: controller.signal });
    const chunks = stream[Symbol.asyncIterator]();
    expect((await chunks.next()).value?.choices[0]?.delta.role).toBe('assistant');
    const next = chunks.next();
    controller.abort();
    // The SDK ends a stream its caller aborted without throwing.
    await expect(next).resolves.toMatchObject({ done: true });
    await expect.poll(async () => (await stats()).client_disconnects).toBe(1);
    expect(await counter('mock_llm_completions_total', 'outcome="fault_stall"')).toBe(1);
    expect(await counter('mock_llm_client_disconnects_total')).toBe(1);
  });

  it('stall never answers a JSON request until the client aborts', async () => {
    const controller = new AbortController();
    const pending = client.chat.completions.create(
      { model: 'mock-fault-stall', messages },
      { signal: controller.signal },
    );
    await expect.poll(async () => (await stats()).in_flight).toBe(1);
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
    await expect.poll(async () => (await stats()).client_disconnects).toBe(1);
    expect((await stats()).in_flight).toBe(0);
  });

  it('serves the default fault at its rate, set at runtime; a header of none opts out', async () => {
    const put = await fetch(`${root()}/mock/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ fault: 'server_error', fault_rate: 1, completion_tokens: 3 }),
    });
    expect(await put.json()).toEqual({
      ttft_ms: 0,
      tokens_per_second: 0,
      completion_tokens: 3,
      fault: 'server_error',
      fault_rate: 1,
      fault_count: 0,
      retry_after_s: 1,
    });
    await expect(client.chat.completions.create({ model, messages })).rejects.toBeInstanceOf(
      OpenAI.InternalServerError,
    );
    const optedOut = await client.chat.completions.create({ model, messages }, { headers: { 'x-mock-fault': 'none' } });
    expect(optedOut.usage?.completion_tokens).toBe(3);

    mock.setDefaults({ faultRate: 0 });
    expect((await getJson<{ fault_rate: number }>('/mock/config')).fault_rate).toBe(0);
    expect((await client.chat.completions.create({ model, messages })).choices[0]?.finish_reason).toBe('stop');
  });

  it('hang sends nothing, not even the headers, until the client leaves', async () => {
    const controller = new AbortController();
    let settled = false;
    const pending = streamOf({ 'x-mock-fault': 'hang' }, { signal: controller.signal }).then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((r) => setTimeout(r, 150));
    expect(settled).toBe(false);
    controller.abort();
    await pending;
    await expect.poll(async () => (await stats()).client_disconnects).toBe(1);
  });

  it('stall_mid sends half the tokens, then nothing, with the connection open', async () => {
    const controller = new AbortController();
    const stream = await streamOf({ 'x-mock-fault': 'stall_mid', 'x-mock-completion-tokens': '10' }, { signal: controller.signal });
    const seen: ChatCompletionChunk[] = [];
    const reading = (async () => {
      for await (const c of stream) seen.push(c);
    })();
    await expect.poll(() => seen.filter((c) => c.choices[0]?.delta.content).length).toBe(5);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.filter((c) => c.choices[0]?.delta.content)).toHaveLength(5);
    controller.abort();
    await reading.catch(() => undefined);
    await expect.poll(async () => (await stats()).client_disconnects).toBe(1);
  });

  it('length finishes half an answer with finish_reason length; no_usage leaves the usage out', async () => {
    const cut = await collect(await streamOf({ 'x-mock-fault': 'length', 'x-mock-completion-tokens': '10' }));
    expect(cut.filter((c) => c.choices[0]?.delta.content)).toHaveLength(5);
    expect(finishReasons(cut)).toEqual(['length']);
    const stream = await client.chat.completions.create(
      { model, messages, stream: true, stream_options: { include_usage: true } },
      { headers: { 'x-mock-fault': 'no_usage' } },
    );
    const chunks = await collect(stream);
    expect(finishReasons(chunks)).toEqual(['stop']);
    expect(chunks.every((c) => !('usage' in c))).toBe(true);
    const json = await client.chat.completions.create({ model, messages }, { headers: { 'x-mock-fault': 'no_usage' } });
    expect(json.usage).toBeUndefined();
  });

  it('serves a default fault fault_count times, with the retry-after it was given, then recovers', async () => {
    await fetch(`${root()}/mock/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ fault: 'rate_limit', fault_count: 2, retry_after_s: 3 }),
    });
    const first = await client.chat.completions.create({ model, messages }).catch((e: unknown) => e);
    expect((first as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after')).toBe('3');
    await expect(client.chat.completions.create({ model, messages })).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    await expect(client.chat.completions.create({ model, messages })).resolves.toMatchObject({ object: 'chat.completion' });
    expect(await getJson('/mock/config')).toMatchObject({ fault: 'none', fault_count: 0 });
    expect((await stats()).arrivals).toHaveLength(3);
  });

  it('refuses an unknown field in PUT /mock/config', async () => {
    const res = await fetch(`${root()}/mock/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ttft: 5 }),
    });
    expect(res.status).toBe(400);
  });
});

describe('observability and control', () => {
  it('counts each completion once in /metrics and /mock/stats', async () => {
    await client.chat.completions.create({ model, messages });
    await collect(await streamOf());
    await client.chat.completions.create({ model: 'mock-fault-rate_limit', messages }).catch(() => undefined);
    await expect.poll(() => counter('mock_llm_completions_total')).toBe(3);
    expect(await counter('mock_llm_completions_total', 'stream="true",outcome="ok"')).toBe(1);
    expect(await counter('mock_llm_completions_total', 'outcome="fault_rate_limit"')).toBe(1);
    expect(await stats()).toMatchObject({ completions: 3, streams: 1, client_disconnects: 0, in_flight: 0, peak_in_flight: 1 });
    expect(await metricsText()).toMatch(/^mock_llm_in_flight\{service="mock-llm"\} 0$/m);
  });

  it('counts a client that leaves a slow stream as client_closed', async () => {
    const stream = await streamOf({ 'x-mock-tokens-per-second': '20' });
    let seen = 0;
    for await (const c of stream) {
      if (c.choices[0]?.delta.content && ++seen === 2) break;
    }
    await expect.poll(() => counter('mock_llm_completions_total', 'outcome="client_closed"')).toBe(1);
    expect(await counter('mock_llm_client_disconnects_total')).toBe(1);
  });

  it('lists models, answers health checks and 404s unknown routes in OpenAI style', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(['gpt-4o', 'gpt-4o-mini', 'mock-1']));
    expect(await getJson('/healthz')).toEqual({ status: 'ok' });
    const missing = await fetch(`${server.url}/embeddings`, { method: 'POST' });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'not_found' } });
  });

  it('close() returns at once even with keep-alive and stalled connections open', async () => {
    const other = await createMockLlm().listen(0);
    const otherClient = new OpenAI({ baseURL: other.url, apiKey: 'test', maxRetries: 0, timeout: 5_000 });
    await otherClient.models.list();
    const stalled = otherClient.chat.completions.create({ model: 'mock-fault-stall', messages });
    const inFlight = async () => ((await (await fetch(other.url.replace(/v1$/, 'mock/stats'))).json()) as MockStats).in_flight;
    await expect.poll(inFlight).toBe(1);
    const started = performance.now();
    await other.close();
    expect(performance.now() - started).toBeLessThan(500);
    await expect(stalled).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
  });
});
