import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CancelRecorder, FakeWorker, sleep, waitFor, startTestGateway, type JobControl, type TestGateway } from '@actionedx/testkit';

/**
 * `/v1/chat/completions` against a gateway on the in-process bus and scripted workers: the cases a real
 * pipeline rarely shows on demand (a failure mid-stream, a restarted answer, no worker, a coalesced answer).
 */
let gw: TestGateway;
let workers: FakeWorker[];
let cancels: CancelRecorder;
let client: OpenAI;

const worker = (script: (ctl: JobControl) => void | Promise<void>, opts: { ack?: boolean } = {}): FakeWorker => {
  const w = new FakeWorker(gw.bus, { script, ...opts });
  workers.push(w);
  return w;
};

const params = { model: 'actionedx/strategy_audit', messages: [{ role: 'user' as const, content: 'Audit my plan' }] };

async function drain(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>, seen: string[]): Promise<void> {
  for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? '');
}

beforeEach(async () => {
  gw = await startTestGateway();
  workers = [];
  cancels = new CancelRecorder(gw.bus);
  client = new OpenAI({ apiKey: 'open', baseURL: `${gw.baseUrl}/v1`, maxRetries: 0, timeout: 5_000 });
});

afterEach(async () => {
  for (const w of workers) w.stop();
  cancels.stop();
  await gw.close();
});

describe('POST /v1/chat/completions with scripted workers', () => {
  it('ends a stream that fails after its first tokens with an OpenAI error event (the SDK throws APIError)', async () => {
    worker((ctl) => {
      ctl.chunk('Start ');
      ctl.error('upstream_unavailable', 'No model provider could answer.', true);
    });
    const seen: string[] = [];
    const stream = await client.chat.completions.create({ ...params, stream: true });
    const err = await drain(stream, seen).catch((e: unknown) => e);
    expect(seen.join('')).toBe('Start ');
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).toMatchObject({ code: 'upstream_unavailable', type: 'server_error' });
  });

  it('ends a stream whose answer restarts (a reset after tokens went out) with a retryable error, and cancels the work', async () => {
    worker(async (ctl) => {
      ctl.chunk('First try ');
      await sleep(50);
      ctl.reset();
      ctl.chunk('Second try');
      ctl.done();
    });
    const seen: string[] = [];
    const { data, request_id } = await client.chat.completions.create({ ...params, stream: true }).withResponse();
    const err = await drain(data, seen).catch((e: unknown) => e);
    expect(seen.join('')).toBe('First try ');
    expect(err).toMatchObject({ code: 'worker_lost' });
    await waitFor(() => cancels.has(request_id!), 2_000, 'a cancel');
  });

  it('answers 503 in OpenAI shape, not a broken stream, when no worker takes the request', async () => {
    worker(() => {}, { ack: false });
    const err = await client.chat.completions.create({ ...params, stream: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err).toMatchObject({ status: 503, code: 'no_workers', type: 'server_error' });
  });

  it('tells a coalesced answer: x-cache coalesced when not streamed; streamed, the last chunk says it', async () => {
    worker((ctl) => {
      ctl.chunk('Shared answer.');
      ctl.done({ cached: true, source: 'peer', usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }, cost_usd: 0 });
    });
    const plain = await client.chat.completions.create(params).withResponse();
    expect(plain.response.headers.get('x-cache')).toBe('coalesced');
    expect(plain.data.choices[0]!.message.content).toBe('Shared answer.');
    const streamed = await client.chat.completions.create({ ...params, stream: true }).withResponse();
    // Headers leave with the first token, before the worker says where the answer came from.
    expect(streamed.response.headers.get('x-cache')).toBe('hit');
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of streamed.data) chunks.push(c);
    expect((chunks.at(-1) as unknown as { actionedx: { cache: string } }).actionedx.cache).toBe('coalesced');
  });

  it('cancels the request when the client gives up before the answer (not streamed)', async () => {
    worker(() => {}); // acks, then says nothing until the client leaves
    const controller = new AbortController();
    const call = client.chat.completions.create(params, { signal: controller.signal }).catch((e: unknown) => e);
    await waitFor(() => workers[0]!.jobs.length === 1, 2_000, 'the job');
    controller.abort();
    expect(await call).toBeInstanceOf(OpenAI.APIUserAbortError);
    const requestId = workers[0]!.jobs[0]!.job.request_id;
    await waitFor(() => cancels.has(requestId), 2_000, 'a cancel');
    expect(cancels.of(requestId)[0]).toMatchObject({ reason: 'client_gone' });
  });
});
