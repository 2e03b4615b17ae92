import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LIMITS } from '@actionedx/shared';
import {
  CancelRecorder,
  FakeWorker,
  answerWith,
  sleep,
  waitFor,
  metricValue,
  parseSseText,
  readSseResponse,
  sampleValue,
  startTestGateway,
  type TestGateway,
} from '@actionedx/testkit';

let gw: TestGateway;
let workers: FakeWorker[];

const worker = (opts: ConstructorParameters<typeof FakeWorker>[1]): FakeWorker => {
  const w = new FakeWorker(gw.bus, opts);
  workers.push(w);
  return w;
};

const post = (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(gw.baseUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

const chatBody = { user_id: 'user-456', message: 'Help me with 9-Pillar audit', mode: 'strategist' };

beforeEach(async () => {
  gw = await startTestGateway();
  workers = [];
});

afterEach(async () => {
  for (const w of workers) w.stop();
  await gw.close();
});

describe('POST /api/assistant/chat (JSON)', () => {
  it('answers with the ChatResponse shape', async () => {
    worker({ script: answerWith(['Start with ', 'the vision pillar.']) });
    const res = await post('/api/assistant/chat', chatBody);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(
      ['cached', 'cost_usd', 'latency_ms', 'mode', 'model', 'request_id', 'response', 'suggestions', 'task_type', 'usage'].sort(),
    );
    expect(body).toMatchObject({
      response: 'Start with the vision pillar.',
      suggestions: ['Try the next pillar'],
      model: 'mock-model',
      mode: 'strategist',
      task_type: 'realtime_tutoring',
      cached: false,
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      cost_usd: 0.0001,
    });
    expect(body.request_id).toBe(res.headers.get('x-request-id'));
    expect(res.headers.get('traceparent')).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
  });

  it("keeps the client's x-request-id and trace across the bus", async () => {
    const w = worker({ script: answerWith(['ok']) });
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await post('/api/assistant/chat', chatBody, {
      'x-request-id': 'client-req-42',
      traceparent: `00-${trace}-00f067aa0ba902b7-01`,
    });
    expect(res.headers.get('x-request-id')).toBe('client-req-42');
    expect(((await res.json()) as { request_id: string }).request_id).toBe('client-req-42');
    expect(res.headers.get('traceparent')).toContain(trace);
    const { job, headers } = w.jobs[0]!;
    expect(job.request_id).toBe('client-req-42');
    expect(headers['x-request-id']).toBe('client-req-42');
    expect(headers.traceparent).toBe(res.headers.get('traceparent'));
  });

  it('replaces an unsafe x-request-id with a fresh one', async () => {
    worker({ script: answerWith(['ok']) });
    const res = await post('/api/assistant/chat', chatBody, { 'x-request-id': 'has spaces.and.dots' });
    const id = res.headers.get('x-request-id');
    expect(id).not.toBe('has spaces.and.dots');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers 503 no_workers at once when no orchestrator is there', async () => {
    const res = await post('/api/assistant/chat', chatBody, { 'x-request-id': 'lonely-1' });
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      error: {
        code: 'no_workers',
        message: 'No orchestrator is available.',
        retryable: true,
        request_id: 'lonely-1',
      },
    });
  });

  it('retries a lost worker and still answers the whole text', async () => {
    const dead = worker({ id: 'dead', script: (ctl) => (ctl.chunk('half'), dead.stop()) });
    const pending = post('/api/assistant/chat', chatBody);
    await waitFor(() => dead.jobs.length === 1, 1_000, 'the first job');
    worker({ id: 'alive', script: answerWith(['the whole ', 'answer']) });
    const res = await pending;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { response: string }).response).toBe('the whole answer');
  });

  it('passes the chat fields through to the worker with defaults applied', async () => {
    const w = worker({ script: answerWith(['ok']) });
    await post('/api/assistant/chat', {
      ...chatBody,
      mode: 'oracle',
      task_type: 'collaboration',
      session_id: 'session-123',
      context: { current_track: 'innovation-foundations' },
      use_cache: false,
    });
    expect(w.jobs[0]!.job.request).toEqual({
      user_id: 'user-456',
      message: 'Help me with 9-Pillar audit',
      mode: 'oracle',
      task_type: 'collaboration',
      session_id: 'session-123',
      context: { current_track: 'innovation-foundations' },
      history: [],
      use_cache: false,
    });
  });
});

describe('POST /api/assistant/chat (SSE)', () => {
  const sse = { accept: 'text/event-stream' };

  it('streams start, chunks in order, then done with the whole answer', async () => {
    worker({ script: answerWith(['a', 'b', 'c']) });
    const res = await post('/api/assistant/chat', chatBody, sse);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('cache-control')).toContain('no-cache');
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    const events = await readSseResponse(res);
    const requestId = res.headers.get('x-request-id');
    expect(events.map((e) => e.event)).toEqual(['start', 'chunk', 'chunk', 'chunk', 'done']);
    expect(events[0]!.data).toEqual({ request_id: requestId });
    expect(events.slice(1, 4).map((e) => e.data)).toEqual([
      { seq: 0, content: 'a' },
      { seq: 1, content: 'b' },
      { seq: 2, content: 'c' },
    ]);
    expect(events[4]!.data).toMatchObject({ response: 'abc', request_id: requestId, model: 'mock-model' });
  });

  it('sends each event as it comes (the first chunk before the worker finishes)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    worker({
      script: async (ctl) => {
        ctl.chunk('early');
        await gate;
        ctl.answer([' late']);
      },
    });
    const res = await post('/api/assistant/chat', chatBody, sse);
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: chunk')) {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
    }
    expect(parseSseText(text).map((e) => e.event)).toEqual(['start', 'chunk']);
    release();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(parseSseText(text).at(-1)).toMatchObject({ event: 'done', data: { response: 'early late' } });
  });

  it('tells the client to reset when the worker is lost after chunks were sent, then sends the whole answer', async () => {
    const dead = worker({ id: 'dead', script: (ctl) => (ctl.chunk('Hel'), ctl.chunk('lo'), dead.stop()) });
    const pending = post('/api/assistant/chat', chatBody, sse);
    await waitFor(() => dead.jobs.length === 1, 1_000, 'the first job');
    worker({ id: 'alive', script: answerWith(['Hello', ' world']) });
    const events = await readSseResponse(await pending);
    expect(events.map((e) => e.event)).toEqual(['start', 'chunk', 'chunk', 'reset', 'chunk', 'chunk', 'done']);
    expect(events[4]!.data).toEqual({ seq: 0, content: 'Hello' });
    expect(events.at(-1)!.data).toMatchObject({ response: 'Hello world' });
  });

  it('ends with an error event when the worker fails mid-stream', async () => {
    worker({ script: (ctl) => (ctl.chunk('par'), ctl.error('upstream_error', 'The model provider failed.', true)) });
    const events = await readSseResponse(await post('/api/assistant/chat', chatBody, sse));
    expect(events.map((e) => e.event)).toEqual(['start', 'chunk', 'error']);
    expect(events[2]!.data).toMatchObject({ error: { code: 'upstream_error', retryable: true } });
  });

  it('answers 503 JSON (not a stream) when no worker takes the request', async () => {
    const res = await post('/api/assistant/chat', chatBody, sse);
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('no_workers');
  });

  it('publishes a cancel when the client disconnects mid-stream', async () => {
    const cancels = new CancelRecorder(gw.bus);
    worker({
      script: async (ctl) => {
        ctl.chunk('thinking...');
        for (let i = 0; i < 100 && gw.bus.state() !== 'closed'; i++) {
          await sleep(20);
          ctl.heartbeat();
        }
      },
    });
    const controller = new AbortController();
    const res = await fetch(`${gw.baseUrl}/api/assistant/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-request-id': 'leaving-1' },
      body: JSON.stringify(chatBody),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: chunk')) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    await waitFor(() => cancels.has('leaving-1'), 2_000, 'the cancel');
    expect(cancels.cancels[0]!.headers['x-request-id']).toBe('leaving-1');
    await waitFor(() => gw.gateway.dispatcher.inFlight === 0, 1_000, 'the request to end');
  });

  it('publishes a cancel when a JSON client disconnects while waiting', async () => {
    const cancels = new CancelRecorder(gw.bus);
    worker({
      script: async (ctl) => {
        for (let i = 0; i < 100 && gw.bus.state() !== 'closed'; i++) {
          await sleep(20);
          ctl.heartbeat();
        }
      },
    });
    const controller = new AbortController();
    const pending = fetch(`${gw.baseUrl}/api/assistant/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'leaving-2' },
      body: JSON.stringify(chatBody),
      signal: controller.signal,
    }).catch(() => undefined);
    await waitFor(() => workers[0]!.jobs.length === 1, 1_000, 'the job');
    controller.abort();
    await pending;
    await waitFor(() => cancels.has('leaving-2'), 2_000, 'the cancel');
  });
});

describe('bad input on REST', () => {
  const expectError = async (res: Response, status: number, code: string): Promise<Record<string, unknown>> => {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(body.error.code).toBe(code);
    expect(body.error.request_id).toBe(res.headers.get('x-request-id'));
    expect(JSON.stringify(body)).not.toMatch(/at .*\.(ts|js):\d+/); // no stack
    return body.error;
  };

  beforeEach(() => {
    worker({ script: answerWith(['fine']) });
  });

  it('invalid JSON → 400 invalid_json', async () => {
    await expectError(await post('/api/assistant/chat', '{"user_id": "u", "message": '), 400, 'invalid_json');
  });

  it('a JSON scalar → 400 invalid_json; an array → 400 validation_failed', async () => {
    await expectError(await post('/api/assistant/chat', '"hello"'), 400, 'invalid_json');
    await expectError(await post('/api/assistant/chat', '[1,2]'), 400, 'validation_failed');
  });

  it('missing user_id → 400 validation_failed naming the field', async () => {
    const err = await expectError(await post('/api/assistant/chat', { message: 'hi' }), 400, 'validation_failed');
    expect(err.details).toMatchObject({ field: 'user_id' });
  });

  it('fields of the wrong type → 400 validation_failed', async () => {
    const err = await expectError(
      await post('/api/assistant/chat', { ...chatBody, use_cache: 'yes' }),
      400,
      'validation_failed',
    );
    expect(err.details).toMatchObject({ field: 'use_cache' });
    const err2 = await expectError(
      await post('/api/assistant/chat', { ...chatBody, user_id: 'no spaces allowed' }),
      400,
      'validation_failed',
    );
    expect(err2.details).toMatchObject({ field: 'user_id' });
  });

  it('unknown mode → 400 unknown_mode; unknown task type → 400 unknown_task_type', async () => {
    await expectError(await post('/api/assistant/chat', { ...chatBody, mode: 'pirate' }), 400, 'unknown_mode');
    await expectError(
      await post('/api/assistant/chat', { ...chatBody, task_type: 'poetry' }),
      400,
      'unknown_task_type',
    );
  });

  it('empty or blank message → 400 message_empty', async () => {
    await expectError(await post('/api/assistant/chat', { ...chatBody, message: '' }), 400, 'message_empty');
    await expectError(await post('/api/assistant/chat', { ...chatBody, message: ' \n\t ' }), 400, 'message_empty');
  });

  it('message too long → 400 message_too_long', async () => {
    const message = 'x'.repeat(LIMITS.messageMaxChars + 1);
    await expectError(await post('/api/assistant/chat', { ...chatBody, message }), 400, 'message_too_long');
  });

  it('takes a message of exactly 16,000 characters (the documented limit) and refuses 16,001', async () => {
    const res = await post('/api/assistant/chat', { ...chatBody, message: 'x'.repeat(16_000) });
    expect(res.status).toBe(200);
    expect(workers[0]!.jobs[0]!.job.request.message).toHaveLength(16_000);
    await expectError(await post('/api/assistant/chat', { ...chatBody, message: 'x'.repeat(16_001) }), 400, 'message_too_long');
  });

  it('body too large → 413 payload_too_large', async () => {
    const big = JSON.stringify({ ...chatBody, context: { blob: 'x'.repeat(gw.config.bodyLimitBytes) } });
    await expectError(await post('/api/assistant/chat', big), 413, 'payload_too_large');
  });

  it('wrong or missing content type → 415 unsupported_media_type', async () => {
    await expectError(
      await post('/api/assistant/chat', JSON.stringify(chatBody), { 'content-type': 'text/plain' }),
      415,
      'unsupported_media_type',
    );
    const res = await fetch(`${gw.baseUrl}/api/assistant/chat`, { method: 'POST', body: new Uint8Array([1, 2]) });
    await expectError(res, 415, 'unsupported_media_type');
  });

  it('an empty JSON body → 400 validation_failed', async () => {
    await expectError(await post('/api/assistant/chat', ''), 400, 'validation_failed');
  });

  it('unknown route → 404 not_found; wrong method → 405 method_not_allowed', async () => {
    await expectError(await fetch(`${gw.baseUrl}/api/nothing/here`), 404, 'not_found');
    const res = await fetch(`${gw.baseUrl}/api/assistant/chat`);
    expect(res.headers.get('allow')).toBe('POST');
    await expectError(res, 405, 'method_not_allowed');
  });

  it('keeps serving after every kind of bad input', async () => {
    await post('/api/assistant/chat', '{nope');
    await post('/api/assistant/chat', 'x'.repeat(100_000));
    const res = await post('/api/assistant/chat', chatBody);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { response: string }).response).toBe('fine');
  });

  it('counts requests by route pattern, never by raw URL', async () => {
    await post('/api/assistant/chat', { ...chatBody, mode: 'pirate' });
    await fetch(`${gw.baseUrl}/api/nothing/${'abc'}?x=1`);
    const text = await (await fetch(`${gw.opsUrl}/metrics`)).text();
    expect(sampleValue(text, 'http_requests_total', { method: 'POST', route: '/api/assistant/chat', status: '400' })).toBe(1);
    expect(sampleValue(text, 'http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(text).not.toContain('/api/nothing');
    expect(await metricValue(gw.registry, 'http_requests_total', { route: '/api/assistant/chat', status: '400' })).toBe(1);
  });
});

describe('task endpoints', () => {
  it('strategy audit: task_type strategy_audit, a deterministic message, the chat answer shape', async () => {
    const w = worker({ script: answerWith(['audit done']) });
    const a = await post('/api/strategy-audit', {
      user_id: 'u1',
      organization: '  Acme   Learning ',
      pillars: { vision: 3, people: 'strong', innovation: 2 },
      message: 'Where do we start?',
    });
    expect(a.status).toBe(200);
    expect(await a.json()).toMatchObject({ response: 'audit done', task_type: 'strategy_audit' });
    await post('/api/strategy-audit', {
      message: 'Where do we start?',
      pillars: { innovation: 2, people: 'strong', vision: 3 },
      organization: 'Acme Learning',
      user_id: 'u1',
    });
    const [first, second] = w.jobs.map((j) => j.job.request);
    expect(first!.task_type).toBe('strategy_audit');
    expect(first!.message).toBe(
      'Strategy audit (9 pillars).\nOrganization: Acme Learning\nPillars:\n- innovation: 2\n- people: strong\n- vision: 3\nRequest: Where do we start?',
    );
    expect(second).toEqual(first);
  });

  it('tri-core loop → framework_alignment; house of hearts → ethical_assessment', async () => {
    const w = worker({ script: answerWith(['ok']) });
    const t = await post('/api/tri-core-loop', { user_id: 'u1', initiative: 'Peer tutoring', cores: { learn: 'weekly' } });
    expect(await t.json()).toMatchObject({ task_type: 'framework_alignment' });
    const h = await post('/api/house-of-hearts', {
      user_id: 'u1',
      scenario: 'Grading with AI',
      stakeholders: ['students', 'teachers'],
      values: ['fairness'],
      mode: 'ally',
    });
    expect(await h.json()).toMatchObject({ task_type: 'ethical_assessment', mode: 'ally' });
    expect(w.jobs[1]!.job.request.message).toBe(
      'House of Hearts ethical assessment.\nScenario: Grading with AI\nStakeholders:\n- students\n- teachers\nValues:\n- fairness',
    );
  });

  it('streams too, and rejects an empty task with message_empty', async () => {
    worker({ script: answerWith(['x']) });
    const events = await readSseResponse(
      await post('/api/tri-core-loop', { user_id: 'u1', message: 'align us' }, { accept: 'text/event-stream' }),
    );
    expect(events.map((e) => e.event)).toEqual(['start', 'chunk', 'done']);
    const res = await post('/api/strategy-audit', { user_id: 'u1' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('message_empty');
    const bad = await post('/api/house-of-hearts', { user_id: 'u1', scenario: 'x', mode: 'pirate' });
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('unknown_mode');
  });
});
