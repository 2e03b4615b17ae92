import { randomUUID } from 'node:crypto';
import {
  createDbMetrics,
  createLogger,
  createMetricsRegistry,
  decodeFrames,
  encodeJson,
  InProcessBus,
  Subjects,
  type ChatJobInput,
  type Frame,
} from '@actionedx/shared';
import { createMockLlm, type ListeningMockLlm, type MockLlm } from '@actionedx/mock-llm';
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import { createCache, type Cache } from './cache/index.js';
import { primaryModels, resolveRouting } from './llm/index.js';
import { MemoryWorkQueue } from '@actionedx/shared';
import { createOrchestrator, type Orchestrator } from './orchestrator.js';
import { MemoryConversationStore } from './store/index.js';
import { TaskRegistry } from './tasks/index.js';

/** One orchestrator on the in-process bus, calling a real mock-llm over HTTP through the openai SDK. */
describe('orchestrator on the in-process bus', () => {
  const bus = new InProcessBus();
  let mock: MockLlm;
  let upstream: ListeningMockLlm;
  let orch: Orchestrator;
  let store: MemoryConversationStore;
  let cache: Cache;
  let registry: ReturnType<typeof createMetricsRegistry>;
  /** Every answer the cache stored: its key, then the TTL it was stored with. */
  let stored: MockInstance<Cache['store']['set']>;
  const tasks = new TaskRegistry({
    model: { ethical_assessment: 'mock-fault-server_error', collaboration: 'mock-fault-truncate', framework_alignment: 'house-model' },
  });
  const logger = createLogger({ service: 'orchestrator', version: 'test', level: 'silent' });

  beforeAll(async () => {
    mock = createMockLlm({ ttftMs: 0, tokensPerSecond: 0 });
    upstream = await mock.listen(0, '127.0.0.1');
    registry = createMetricsRegistry('orchestrator', { defaultMetrics: false });
    store = new MemoryConversationStore({ metrics: createDbMetrics(registry) });
    const models = Object.fromEntries(tasks.all().map((t) => [t.taskType, t.model])) as ReturnType<typeof primaryModels>;
    cache = createCache({ registry, logger, name: 'test' });
    stored = vi.spyOn(cache.store, 'set');
    orch = createOrchestrator({
      bus,
      cache,
      store,
      routing: resolveRouting({}, { models, apiKey: 'test', timeoutMs: 5000, maxRetries: 0 }),
      defaultBaseUrl: upstream.url,
      tasks,
      logger,
      registry,
      workerId: 'w1',
      queue: new MemoryWorkQueue({ maxJobs: 100, maxPerUser: 50, ackWaitMs: 2_000, maxDeliver: 3, replicas: 1, maxAgeMs: 60_000 }),
      maxInFlight: 4,
    });
    orch.start();
  });
  afterAll(async () => {
    await orch.stop(100);
    await cache.close();
    await upstream.close();
    await bus.close();
  });

  async function stats(): Promise<{ completions: number; client_disconnects: number }> {
    return (await fetch(`${upstream.url.replace(/\/v1$/, '')}/mock/stats`)).json() as never;
  }

  /**
   * Sends one attempt of a job on `on` as the gateway does (the ack and every frame come back on `reply_to`);
   * `firstChunk` resolves at its first chunk, `ended` with everything once its terminal frame arrived.
   */
  function send(request: ChatJobInput['request'], opts: { on?: InProcessBus; request_id?: string; attempt?: number } = {}) {
    const on = opts.on ?? bus;
    const request_id = opts.request_id ?? randomUUID();
    const attempt = opts.attempt ?? 0;
    const reply_to = Subjects.chatFrames('gw-test', request_id);
    const frames: Frame[] = [];
    let chunked: () => void;
    const firstChunk = new Promise<void>((resolve) => (chunked = resolve));
    const ended = new Promise<void>((resolve) => {
      const sub = on.subscribe(reply_to, (m) => {
        for (const f of decodeFrames(m.data)) {
          if (f.attempt !== attempt) continue;
          frames.push(f);
          if (f.type === 'chunk') chunked();
          if (f.type === 'done' || f.type === 'error') {
            sub.unsubscribe();
            resolve();
          }
        }
      });
    });
    const job: ChatJobInput = { request_id, attempt, reply_to, deadline_at: Date.now() + 10_000, heartbeat_ms: 1000, request };
    on.publish(Subjects.chatRequest, encodeJson(job), { reply: reply_to });
    const outcome = ended.then(() => {
      const chunks = frames.filter((f) => f.type === 'chunk');
      const terminal = frames.filter((f) => f.type === 'done' || f.type === 'error');
      const text = chunks.map((c) => (c.type === 'chunk' ? c.delta : '')).join('');
      return { ack: frames[0], frames, chunks, terminal: terminal[0]!, terminals: terminal.length, text };
    });
    return { request_id, firstChunk, ended: outcome };
  }

  /** Runs a job to its terminal frame; `cancelAfterChunks`: the client goes away after that many chunk frames. */
  async function run(request: ChatJobInput['request'], opts: { cancelAfterChunks?: number } = {}) {
    const job = send(request);
    if (opts.cancelAfterChunks !== undefined) {
      let seen = 0;
      const sub = bus.subscribe(Subjects.chatFrames('gw-test', job.request_id), (m) => {
        for (const f of decodeFrames(m.data)) {
          if (f.type === 'chunk' && ++seen === opts.cancelAfterChunks) {
            sub.unsubscribe();
            bus.publish(Subjects.chatCancel, encodeJson({ request_id: job.request_id, reason: 'client_gone' }));
          }
        }
      });
      void job.ended.then(() => sub.unsubscribe());
    }
    return job.ended;
  }

  /** Changes mock-llm's behaviour for the duration of `body`. */
  async function withMock<T>(patch: Parameters<MockLlm['setDefaults']>[0], body: () => Promise<T>): Promise<T> {
    const previous = mock.setDefaults({});
    mock.setDefaults(patch);
    try {
      return await body();
    } finally {
      mock.setDefaults(previous);
    }
  }

  /** The keys stored since `from` (an index into the store's calls). */
  const keysStoredSince = (from: number) => stored.mock.calls.slice(from).map(([key]) => key);

  it('answers the administrative requests: its model-target breakers and the conversation history', async () => {
    const reply = await bus.request(Subjects.workerBreakers, encodeJson({}), { timeoutMs: 2_000 });
    const body = JSON.parse(new TextDecoder().decode(reply.data)) as { ok: boolean; data: { worker_id: string; model_targets: Record<string, string> } };
    expect(body.ok).toBe(true);
    expect(body.data.worker_id).toBe('w1');
    expect(Object.keys(body.data.model_targets).length).toBeGreaterThan(0);
    for (const state of Object.values(body.data.model_targets)) expect(['closed', 'open', 'half_open']).toContain(state);
    const history = await bus.request(Subjects.conversationSessions, encodeJson({ user_id: 'nobody-here' }), { timeoutMs: 2_000 });
    expect(JSON.parse(new TextDecoder().decode(history.data))).toEqual({ ok: true, data: { sessions: [] } });
  });

  it('acks, streams chunks in seq order and ends with exactly one done frame', async () => {
    const r = await run({ user_id: 'u1', message: `hello ${randomUUID()}` });
    expect(r.ack).toMatchObject({ type: 'ack', worker_id: 'w1' });
    expect(r.chunks.map((c) => (c.type === 'chunk' ? c.seq : -1))).toEqual(r.chunks.map((_, i) => i));
    expect(r.terminals).toBe(1);
    expect(r.terminal).toMatchObject({ type: 'done', cached: false, chunks: r.chunks.length, mode: 'strategist' });
    if (r.terminal.type !== 'done') throw new Error('not done');
    expect(r.terminal.usage.completion_tokens).toBeGreaterThan(0);
    expect(r.terminal.suggestions.length).toBeGreaterThan(0);
    expect(r.text).toContain('Suggestions:');
  });

  it('answers a repeat from the cache with the same text, and bypasses it on use_cache:false', async () => {
    const request = { user_id: 'u2', message: `cache me ${randomUUID()}` };
    const before = (await stats()).completions;
    const first = await run(request);
    const second = await run(request);
    expect(first.terminal).toMatchObject({ type: 'done', cached: false, source: 'model' });
    expect(second.terminal).toMatchObject({ type: 'done', cached: true, source: 'cache', cost_usd: 0 });
    expect(second.text).toBe(first.text);
    expect((await stats()).completions - before).toBe(1);
    const bypass = await run({ ...request, use_cache: false });
    expect(bypass.terminal).toMatchObject({ cached: false });
    expect((await stats()).completions - before).toBe(2);
  });

  it('makes one model call for identical concurrent requests, and all get the whole answer', async () => {
    mock.setDefaults({ ttftMs: 100 });
    try {
      const request = { user_id: 'u3', message: `together ${randomUUID()}` };
      const before = (await stats()).completions;
      const results = await Promise.all(Array.from({ length: 10 }, () => run(request)));
      expect((await stats()).completions - before).toBe(1);
      expect(new Set(results.map((r) => r.text)).size).toBe(1);
      expect(results.filter((r) => r.terminal.type === 'done' && !r.terminal.cached)).toHaveLength(1);
      expect(results.map((r) => (r.terminal.type === 'done' ? r.terminal.source : 'error')).sort()).toEqual(['model', ...Array<string>(9).fill('peer')]);
    } finally {
      mock.setDefaults({ ttftMs: 0 });
    }
  });

  it('keeps the one model call going for the others when one of three identical requests is cancelled', async () => {
    await withMock({ tokensPerSecond: 100 }, async () => {
      const request = { user_id: 'u10', message: `three of us ${randomUUID()}` };
      const before = await stats();
      const leaving = run(request, { cancelAfterChunks: 1 });
      const staying = Promise.all([run(request), run(request)]);
      expect((await leaving).terminal).toMatchObject({ type: 'error', code: 'cancelled' });
      const [a, b] = await staying;
      for (const r of [a, b]) expect(r.terminal).toMatchObject({ type: 'done', chunks: r.chunks.length });
      expect(b.text).toBe(a.text);
      expect(a.text).toMatch(/Suggestions:\n- /);
      const after = await stats();
      expect(after.completions - before.completions).toBe(1);
      // The model call ran to its end: the model server never saw its client leave.
      expect(after.client_disconnects).toBe(before.client_disconnects);
      // The whole answer was stored: a repeat comes from the cache with the same text.
      const again = await run(request);
      expect(again.terminal).toMatchObject({ type: 'done', cached: true });
      expect(again.text).toBe(a.text);
    });
  });

  it("keeps a strategy_audit answer to its user: alice's repeat is cached, bob's same question is not, under another key", async () => {
    const message = `Audit our 9 pillars ${randomUUID()}`;
    const before = (await stats()).completions;
    const from = stored.mock.calls.length;
    const alice = await run({ user_id: 'alice', message, task_type: 'strategy_audit' });
    const again = await run({ user_id: 'alice', message, task_type: 'strategy_audit' });
    const bob = await run({ user_id: 'bob', message, task_type: 'strategy_audit' });
    expect(alice.terminal).toMatchObject({ type: 'done', cached: false });
    expect(again.terminal).toMatchObject({ type: 'done', cached: true });
    expect(again.text).toBe(alice.text);
    expect(bob.terminal).toMatchObject({ type: 'done', cached: false });
    expect((await stats()).completions - before).toBe(2);
    const keys = keysStoredSince(from);
    expect(keys).toHaveLength(2);
    for (const key of keys) expect(key).toMatch(/^ai_cache:strategy_audit:[0-9a-f]{64}$/);
    expect(keys[1]).not.toBe(keys[0]);
  });

  it("shares a realtime_tutoring answer: bob's same question is answered from alice's entry", async () => {
    const message = `What is a rubric? ${randomUUID()}`;
    const before = (await stats()).completions;
    const alice = await run({ user_id: 'alice', message, task_type: 'realtime_tutoring' });
    const bob = await run({ user_id: 'bob', message, task_type: 'realtime_tutoring' });
    expect(alice.terminal).toMatchObject({ type: 'done', cached: false });
    expect(bob.terminal).toMatchObject({ type: 'done', cached: true });
    expect(bob.text).toBe(alice.text);
    expect((await stats()).completions - before).toBe(1);
  });

  it("caps an answer at the request's max_tokens, below the task's own cap, and keeps it apart in the cache", async () => {
    const request = { user_id: 'u12', message: `short please ${randomUUID()}`, task_type: 'realtime_tutoring' as const };
    const capped = await run({ ...request, max_tokens: 5, temperature: 0.1 });
    expect(capped.terminal).toMatchObject({ type: 'done', cached: false, usage: { completion_tokens: 5 } });
    const full = await run(request);
    expect(full.terminal).toMatchObject({ type: 'done', cached: false });
    if (full.terminal.type !== 'done') throw new Error('not done');
    expect(full.terminal.usage.completion_tokens).toBeGreaterThan(5);
    // Above the task's cap: the task's cap, the same answer as asking for nothing.
    const above = await run({ ...request, max_tokens: 32_768 });
    expect(above.terminal).toMatchObject({ type: 'done', cached: true });
    expect(above.text).toBe(full.text);
  });

  it('never caches an answer cut at max_tokens (finish_reason length): each ask calls the model', async () => {
    const { maxTokens } = tasks.get('realtime_tutoring');
    await withMock({ completionTokens: maxTokens + 20 }, async () => {
      const request = { user_id: 'u11', message: `a long one ${randomUUID()}`, task_type: 'realtime_tutoring' as const };
      const before = (await stats()).completions;
      const from = stored.mock.calls.length;
      const first = await run(request);
      const second = await run(request);
      // Answered, cut where the task's token budget ends, and never stored.
      for (const r of [first, second]) {
        expect(r.terminal).toMatchObject({ type: 'done', cached: false, usage: { completion_tokens: maxTokens } });
      }
      expect(second.text).toBe(first.text);
      expect((await stats()).completions - before).toBe(2);
      expect(keysStoredSince(from)).toEqual([]);
    });
  });

  it('stops only the superseded attempt: a cancel up to attempt 0 ends it, attempt 1 on another worker goes on', async () => {
    // The other worker has a bus of its own, so the test decides which worker runs which attempt; the cancel
    // reaches every worker, as on NATS (workers listen to cancels outside their queue group).
    const otherBus = new InProcessBus();
    const otherRegistry = createMetricsRegistry('orchestrator', { defaultMetrics: false });
    const otherCache = createCache({ registry: otherRegistry, logger, name: 'test-2' });
    const other = createOrchestrator({
      bus: otherBus,
      cache: otherCache,
      store: new MemoryConversationStore({ metrics: createDbMetrics(otherRegistry) }),
      routing: resolveRouting({}, { models: Object.fromEntries(tasks.all().map((t) => [t.taskType, t.model])) as never, apiKey: 'test', timeoutMs: 5000, maxRetries: 0 }),
      defaultBaseUrl: upstream.url,
      tasks,
      logger,
      registry: otherRegistry,
      workerId: 'w2',
      queue: new MemoryWorkQueue({ maxJobs: 100, maxPerUser: 50, ackWaitMs: 2_000, maxDeliver: 3, replicas: 1, maxAgeMs: 60_000 }),
      maxInFlight: 4,
    });
    other.start();
    try {
      await withMock({ tokensPerSecond: 100 }, async () => {
        const request = { user_id: 'u12', message: `retried ${randomUUID()}`, use_cache: false };
        const before = await stats();
        const superseded = send(request, { attempt: 0 });
        await superseded.firstChunk;
        const retry = send(request, { on: otherBus, request_id: superseded.request_id, attempt: 1 });
        await retry.firstChunk;
        const cancel = encodeJson({ request_id: superseded.request_id, reason: 'superseded', up_to_attempt: 0 });
        for (const b of [bus, otherBus]) b.publish(Subjects.chatCancel, cancel);
        expect((await superseded.ended).terminal).toMatchObject({ type: 'error', code: 'cancelled', attempt: 0 });
        const r = await retry.ended;
        expect(r.ack).toMatchObject({ type: 'ack', worker_id: 'w2' });
        expect(r.terminal).toMatchObject({ type: 'done', attempt: 1, chunks: r.chunks.length });
        expect(r.text).toMatch(/Suggestions:\n- /);
        // Attempt 0's model call was closed; attempt 1's ran to its end.
        expect((await stats()).completions - before.completions).toBe(2);
        await expect.poll(async () => (await stats()).client_disconnects).toBe(before.client_disconnects + 1);
      });
    } finally {
      await other.stop(100);
      await otherCache.close();
      await otherBus.close();
    }
  });

  it('aborts the upstream call on cancel and ends with a cancelled error', async () => {
    mock.setDefaults({ tokensPerSecond: 50 });
    try {
      const before = (await stats()).client_disconnects;
      const r = await run({ user_id: 'u4', message: `stop me ${randomUUID()}`, use_cache: false }, { cancelAfterChunks: 1 });
      expect(r.terminal).toMatchObject({ type: 'error', code: 'cancelled' });
      await expect.poll(async () => (await stats()).client_disconnects).toBeGreaterThan(before);
    } finally {
      mock.setDefaults({ tokensPerSecond: 0 });
    }
  });

  it('ignores a cancel meant for an earlier attempt', async () => {
    mock.setDefaults({ tokensPerSecond: 100 });
    try {
      const request_id = randomUUID();
      const reply_to = Subjects.chatFrames('gw-test', request_id);
      const frames: Frame[] = [];
      const ended = new Promise<void>((resolve) =>
        bus.subscribe(reply_to, (m) => {
          for (const f of decodeFrames(m.data)) {
            frames.push(f);
            if (f.type === 'chunk' && f.seq === 0) bus.publish(Subjects.chatCancel, encodeJson({ request_id, up_to_attempt: 0 }));
            if (f.type === 'done' || f.type === 'error') resolve();
          }
        }),
      );
      const job: ChatJobInput = { request_id, attempt: 1, reply_to, deadline_at: Date.now() + 10_000, heartbeat_ms: 1000, request: { user_id: 'u8', message: 'keep going', use_cache: false } };
      bus.publish(Subjects.chatRequest, encodeJson(job), { reply: reply_to });
      await ended;
      expect(frames.at(-1)).toMatchObject({ type: 'done', attempt: 1 });
    } finally {
      mock.setDefaults({ tokensPerSecond: 0 });
    }
  });

  it('maps an upstream failure to a retryable error frame', async () => {
    const r = await run({ user_id: 'u5', message: 'x', task_type: 'ethical_assessment' });
    expect(r.terminal).toMatchObject({ type: 'error', code: 'upstream_unavailable', retryable: true });
    expect((r.terminal as { message: string }).message).toContain('(500)');
  });

  it('never caches a stream that ended without finishing', async () => {
    const request = { user_id: 'u6', message: `cut short ${randomUUID()}`, task_type: 'collaboration' as const };
    const first = await run(request);
    expect(first.terminal).toMatchObject({ type: 'error', code: 'upstream_unavailable', message: expect.stringContaining('ended without finishing') });
    const second = await run(request);
    expect(second.terminal).toMatchObject({ type: 'error', code: 'upstream_unavailable' });
  });

  it('records each turn and continues a session from its stored history', async () => {
    const session_id = `s-${randomUUID().slice(0, 8)}`;
    const user_id = `u7-${randomUUID().slice(0, 8)}`;
    const first = await run({ user_id, session_id, message: 'Where do I start?' });
    await expect.poll(async () => (await store.history({ user_id, session_id })).length).toBe(1);
    // The same words later in the session carry the first turn as history: another prompt, another answer.
    const second = await run({ user_id, session_id, message: 'Where do I start?' });
    expect(second.terminal).toMatchObject({ type: 'done', cached: false });
    expect(second.text).not.toBe(first.text);
    await expect.poll(async () => (await store.usage({ user_id })).requests).toBe(2);
  });

  it('records a model without a price at cost 0 and counts its calls', async () => {
    const unpriced = async () =>
      (await registry.getSingleMetric('ai_unpriced_requests_total')!.get()).values.find((v) => v.labels.model === 'house-model')?.value ?? 0;
    const before = await unpriced();
    const r = await run({ user_id: 'u9', message: `unpriced ${randomUUID()}`, task_type: 'framework_alignment' });
    expect(r.terminal).toMatchObject({ type: 'done', cached: false, model: 'house-model', cost_usd: 0 });
    expect(await unpriced()).toBe(before + 1);
  });

  it('answers pings and reports health', async () => {
    const reply = await bus.request(Subjects.workerPing, encodeJson({}), { timeoutMs: 500 });
    expect(JSON.parse(new TextDecoder().decode(reply.data))).toMatchObject({ ok: true, data: { worker_id: 'w1' } });
    expect(await orch.health()).toMatchObject({ status: 'healthy', service: 'orchestrator' });
  });
});
