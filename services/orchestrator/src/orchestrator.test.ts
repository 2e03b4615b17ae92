import { randomUUID } from 'node:crypto';
import {
  createCacheMetrics,
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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from './cache/index.js';
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
  let registry: ReturnType<typeof createMetricsRegistry>;

  beforeAll(async () => {
    mock = createMockLlm({ ttftMs: 0, tokensPerSecond: 0 });
    upstream = await mock.listen(0, '127.0.0.1');
    registry = createMetricsRegistry('orchestrator', { defaultMetrics: false });
    store = new MemoryConversationStore({ metrics: createDbMetrics(registry) });
    const tasks = new TaskRegistry({
      model: { ethical_assessment: 'mock-fault-server_error', collaboration: 'mock-fault-truncate', framework_alignment: 'house-model' },
    });
    const models = Object.fromEntries(tasks.all().map((t) => [t.taskType, t.model])) as ReturnType<typeof primaryModels>;
    orch = createOrchestrator({
      bus,
      cache: createCache({ registry, logger: createLogger({ service: 'orchestrator', version: 'test', level: 'silent' }), name: 'test' }),
      store,
      routing: resolveRouting({}, { models, apiKey: 'test', timeoutMs: 5000, maxRetries: 0 }),
      defaultBaseUrl: upstream.url,
      tasks,
      logger: createLogger({ service: 'orchestrator', version: 'test', level: 'silent' }),
      registry,
      workerId: 'w1',
      queue: new MemoryWorkQueue({ maxJobs: 100, maxPerUser: 50, ackWaitMs: 2_000, maxDeliver: 3, replicas: 1, maxAgeMs: 60_000 }),
      maxInFlight: 4,
    });
    orch.start();
  });
  afterAll(async () => {
    await orch.stop(100);
    await upstream.close();
    await bus.close();
  });

  async function stats(): Promise<{ completions: number; client_disconnects: number }> {
    return (await fetch(`${upstream.url.replace(/\/v1$/, '')}/mock/stats`)).json() as never;
  }

  /** Sends a job as the gateway does and collects its frames up to the terminal one. */
  async function run(request: ChatJobInput['request'], opts: { cancelAfterChunks?: number } = {}) {
    const request_id = randomUUID();
    const reply_to = Subjects.chatFrames('gw-test', request_id);
    const frames: Frame[] = [];
    const ended = new Promise<void>((resolve) => {
      const sub = bus.subscribe(reply_to, (m) => {
        for (const f of decodeFrames(m.data)) {
          frames.push(f);
          if (f.type === 'chunk' && frames.filter((x) => x.type === 'chunk').length === opts.cancelAfterChunks) {
            bus.publish(Subjects.chatCancel, encodeJson({ request_id }));
          }
          if (f.type === 'done' || f.type === 'error') {
            sub.unsubscribe();
            resolve();
          }
        }
      });
    });
    const job: ChatJobInput = { request_id, attempt: 0, reply_to, deadline_at: Date.now() + 10_000, heartbeat_ms: 1000, request };
    // As the gateway sends it: the ack and every frame come back on `reply_to`.
    bus.publish(Subjects.chatRequest, encodeJson(job), { reply: reply_to });
    await ended;
    const ack = frames[0];
    const chunks = frames.filter((f) => f.type === 'chunk');
    const terminal = frames.filter((f) => f.type === 'done' || f.type === 'error');
    return { ack, frames, chunks, terminal: terminal[0]!, terminals: terminal.length, text: chunks.map((c) => (c.type === 'chunk' ? c.delta : '')).join('') };
  }

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
    expect(second.terminal).toMatchObject({ type: 'done', cached: true, cost_usd: 0 });
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
    } finally {
      mock.setDefaults({ ttftMs: 0 });
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
