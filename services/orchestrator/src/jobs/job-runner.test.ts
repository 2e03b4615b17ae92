import { randomUUID } from 'node:crypto';
import { RateLimitError, UnrecoverableError } from 'bullmq';
import { createMockLlm, type ListeningMockLlm } from '@actionedx/mock-llm';
import {
  createAiMetrics,
  createDbMetrics,
  createJobMetrics,
  createLogger,
  createMetricsRegistry,
  createRedisClient,
  decodeJson,
  InProcessBus,
  JobEndings,
  JobEventSchema,
  JobEvents,
  JobStore,
  JobSubjects,
  LIMITS,
  type JobEvent,
  type JobInput,
  type JobKind,
  type Redis,
  type TaskType,
} from '@actionedx/shared';
import { sampleDocument } from '@actionedx/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from '../cache/index.js';
import { AnswerMetrics, CachedAnswers } from '../chat/index.js';
import { createRouterMetrics, ModelRouter, PriceTable, resolveRouting } from '../llm/index.js';
import { MemoryConversationStore } from '../store/index.js';
import { TaskRegistry } from '../tasks/index.js';
import { JobKindRegistry } from './job-kinds.js';
import { JobRunner, type JobAttempt } from './job-runner.js';
import { waitForReady } from './job-workers.js';

/**
 * The job runner against a real Redis (REDIS_URL, a prefix per file), the in-process bus, an in-memory cache
 * and a mock LLM over HTTP: what a step costs, what a retry skips, how each failure ends.
 */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger({ service: 'orchestrator', version: 'test', level: 'silent' });

describe('JobRunner', () => {
  const bus = new InProcessBus();
  const prefix = `test-runner-${randomUUID()}`;
  let redis: Redis;
  let upstream: ListeningMockLlm;
  let store: JobStore;
  let runner: JobRunner;
  let conversations: MemoryConversationStore;
  let registry: ReturnType<typeof createMetricsRegistry>;
  const events: JobEvent[] = [];

  beforeAll(async () => {
    upstream = await createMockLlm({ ttftMs: 0, tokensPerSecond: 0 }).listen(0, '127.0.0.1');
    redis = createRedisClient({ url: REDIS_URL, name: 'job-runner-test', commandTimeoutMs: 2_000, connectTimeoutMs: 2_000 });
    await waitForReady(redis, 3_000);
    store = new JobStore(redis, { prefix });
    registry = createMetricsRegistry('orchestrator', { defaultMetrics: false });
    const aiMetrics = createAiMetrics(registry);
    conversations = new MemoryConversationStore({ metrics: createDbMetrics(registry) });
    const jobEvents = new JobEvents(store, bus);
    const tasks = new TaskRegistry({ model: { ethical_assessment: 'mock-fault-rate_limit', collaboration: 'mock-fault-server_error' } });
    runner = new JobRunner({
      store,
      events: jobEvents,
      endings: new JobEndings({ store, events: jobEvents }),
      kinds: new JobKindRegistry(),
      tasks,
      answers: new CachedAnswers({
        router: new ModelRouter(
          resolveRouting({}, { models: Object.fromEntries(tasks.all().map((t) => [t.taskType, t.model])) as never, apiKey: 'test', timeoutMs: 5_000, maxRetries: 0 }),
          { metrics: createRouterMetrics(registry), upstreamErrors: aiMetrics.upstreamErrors, logger, defaultBaseUrl: upstream.url },
        ),
        prices: new PriceTable({}),
        flights: createCache({ registry, logger, name: 'test' }).flights,
        metrics: aiMetrics,
        logger,
      }),
      answerMetrics: new AnswerMetrics(aiMetrics),
      metrics: createJobMetrics(registry),
      conversations,
      workerId: 'w-test',
      logger,
      rateLimitMs: 5_000,
    });
    bus.subscribe('jobs.v1.events.*', (m) => events.push(decodeJson(JobEventSchema, m.data)));
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await upstream.close();
    await bus.close();
  });

  const completions = async (): Promise<number> =>
    ((await (await fetch(`${upstream.url.replace(/\/v1$/, '')}/mock/stats`)).json()) as { completions: number }).completions;

  async function create(kind: JobKind, input: JobInput, opts: { task_type?: TaskType; use_cache?: boolean; session_id?: string } = {}) {
    return store.create({
      id: `job-${randomUUID()}`,
      kind,
      owner: 'ms.rivera@school.example',
      task_type: opts.task_type ?? (kind === 'document_audit' ? 'strategy_audit' : 'framework_alignment'),
      mode: 'strategist',
      title: 'Plan',
      session_id: opts.session_id ?? null,
      use_cache: opts.use_cache ?? false,
      input,
      webhook_url: null,
      created_at: Date.now(),
      steps_total: 0,
    });
  }

  const attempt = (jobId: string, over: Partial<JobAttempt> = {}): JobAttempt & { waits: number[] } => {
    const waits: number[] = [];
    return {
      jobId,
      attempt: 1,
      maxAttempts: 3,
      started: 1,
      signal: new AbortController().signal,
      rateLimit: async (ms) => void waits.push(ms),
      waits,
      ...over,
    };
  };

  const eventsOf = (id: string) => events.filter((e) => e.job_id === id);

  it('audits a document section by section, then synthesises, publishing progress in order', async () => {
    const rec = await create('document_audit', { document: sampleDocument(3), title: 'Plan' }, { session_id: 'sess-9' });
    const before = await completions();
    expect(await runner.run(attempt(rec.id))).toBe('completed');
    expect((await completions()) - before).toBe(4);
    const done = (await store.get(rec.id))!;
    expect(done).toMatchObject({ state: 'completed', percent: 100, steps_done: 4, steps_total: 4, error: null });
    expect(done.result!.parts.map((p) => p.label)).toEqual(['Section 1 of 3', 'Section 2 of 3', 'Section 3 of 3']);
    expect(done.result!.summary).toBeTruthy();
    expect(done.usage.total_tokens).toBeGreaterThan(0);
    const seen = eventsOf(rec.id);
    expect(seen.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seen.map((e) => (e.type === 'job_progress' ? e.percent : e.type))).toEqual([0, 25, 50, 75, 100, 'job_done']);
    // Recorded in the session's conversation (and the usage ledger) once.
    const turns = await conversations.history({ user_id: 'ms.rivera@school.example', session_id: 'sess-9' });
    expect(turns).toHaveLength(1);
    expect(turns[0]).toMatchObject({ request_id: `job:${rec.id}`, response: done.result!.summary });
  });

  it('skips the steps an earlier attempt stored: a retried job pays only for the rest', async () => {
    const rec = await create('batch_alignment', { items: [{ text: 'one' }, { text: 'two' }, { text: 'three' }, { text: 'four' }] });
    const usage = { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 };
    for (const index of [0, 1]) {
      await store.saveStep(rec.id, { index, label: `Item ${index + 1}`, response: `stored ${index}`, suggestions: [], model: 'm', cached: false, usage, cost_usd: 0.25, worker_id: 'dead-worker', attempt: 1, ms: 5 });
    }
    const before = await completions();
    await runner.run(attempt(rec.id, { attempt: 2, started: 2 }));
    expect((await completions()) - before).toBe(2);
    const done = (await store.get(rec.id))!;
    expect(done.result!.parts.map((p) => p.response.slice(0, 8))).toEqual(['stored 0', 'stored 1', expect.any(String), expect.any(String)]);
    expect(done.result!.summary).toBeNull();
    // The stored steps' cost still counts: the job cost what its calls cost, once.
    expect(done.usage.total_tokens).toBeGreaterThan(60);
    expect(done.cost_usd).toBeGreaterThanOrEqual(0.5);
    expect(done.attempts).toBe(2);
    expect(eventsOf(rec.id)[0]).toMatchObject({ type: 'job_progress', message: 'resumed after 2 of 4 steps', percent: 50 });
    const text = await registry.metrics();
    expect(text).toMatch(/jobs_steps_skipped_total\{[^}]*kind="batch_alignment"[^}]*\} 2/);
  });

  it('answers its steps from the cache the chat path fills, when the job allows the cache', async () => {
    const items = [{ text: `A lesson on ratios ${randomUUID()}` }, { text: `A lesson on maps ${randomUUID()}` }];
    const first = await create('batch_alignment', { items }, { use_cache: true });
    await runner.run(attempt(first.id));
    const before = await completions();
    const second = await create('batch_alignment', { items }, { use_cache: true });
    await runner.run(attempt(second.id));
    expect((await completions()) - before).toBe(0);
    const done = (await store.get(second.id))!;
    expect(done.result!.parts.every((p) => p.cached)).toBe(true);
    expect(done.cost_usd).toBe(0);
  });

  it('on a provider 429 pauses the queue for the retry-after and puts the job back, without using an attempt', async () => {
    const rec = await create('batch_alignment', { items: [{ text: 'x' }] }, { task_type: 'ethical_assessment' });
    const a = attempt(rec.id, { attempt: 3, maxAttempts: 3 });
    await expect(runner.run(a)).rejects.toBeInstanceOf(RateLimitError);
    expect(a.waits).toEqual([1_000]);
    expect(await store.get(rec.id)).toMatchObject({ state: 'queued', message: expect.stringContaining('rate limiting') });
    expect(eventsOf(rec.id).at(-1)).toMatchObject({ type: 'job_progress', state: 'queued' });
  });

  it('retries a retryable failure while attempts remain, then fails the job with its error', async () => {
    const rec = await create('batch_alignment', { items: [{ text: 'x' }] }, { task_type: 'collaboration' });
    await expect(runner.run(attempt(rec.id, { attempt: 1, maxAttempts: 2 }))).rejects.toMatchObject({ code: 'upstream_unavailable' });
    expect(await store.get(rec.id)).toMatchObject({ state: 'queued', message: 'retrying after upstream_unavailable (attempt 1 of 2)' });
    await expect(runner.run(attempt(rec.id, { attempt: 2, maxAttempts: 2 }))).rejects.toBeInstanceOf(UnrecoverableError);
    expect(await store.get(rec.id)).toMatchObject({ state: 'failed', error: { code: 'upstream_unavailable', retryable: true } });
    expect(eventsOf(rec.id).at(-1)).toMatchObject({ type: 'job_failed', state: 'failed', error: { code: 'upstream_unavailable' } });
    // An ended job is not run again.
    expect(await runner.run(attempt(rec.id))).toBe('skipped');
  });

  it('cancels: a job cancelled while queued never calls the model; a running one stops its step', async () => {
    const queued = await create('batch_alignment', { items: [{ text: 'x' }] });
    await store.requestCancel(queued.id);
    const before = await completions();
    await expect(runner.run(attempt(queued.id))).rejects.toBeInstanceOf(UnrecoverableError);
    expect(await completions()).toBe(before);
    expect(await store.get(queued.id)).toMatchObject({ state: 'cancelled', error: { code: 'cancelled' } });

    const running = await create('batch_alignment', { items: [{ text: 'a' }, { text: 'b' }, { text: 'c' }] });
    const controller = new AbortController();
    const sub = bus.subscribe(JobSubjects.events('ms.rivera@school.example'), (m) => {
      const e = decodeJson(JobEventSchema, m.data);
      if (e.job_id === running.id && e.type === 'job_progress' && e.steps_done === 1) {
        void store.requestCancel(running.id).then(() => controller.abort('cancelled'));
      }
    });
    await expect(runner.run(attempt(running.id, { signal: controller.signal }))).rejects.toBeInstanceOf(UnrecoverableError);
    sub.unsubscribe();
    const rec = (await store.get(running.id))!;
    expect(rec.state).toBe('cancelled');
    expect(rec.steps_done).toBeLessThan(3);
    expect(eventsOf(running.id).at(-1)).toMatchObject({ type: 'job_failed', state: 'cancelled' });
  });

  it('plans within the message limit: a synthesis over many long sections still fits in one message', async () => {
    const plan = new JobKindRegistry().get('document_audit').plan({ input: { document: sampleDocument(40, 4_800) }, title: 'Big plan' });
    expect(plan.steps.length).toBe(40);
    const parts = plan.steps.map((s) => ({ index: s.index, label: s.label, response: 'finding '.repeat(500), suggestions: [], model: 'm', cached: false, usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }, cost_usd: 0, worker_id: 'w', attempt: 1, ms: 1 }));
    const synthesis = plan.synthesis!(parts);
    expect(synthesis.index).toBe(40);
    expect(synthesis.message.length).toBeLessThanOrEqual(LIMITS.messageMaxChars);
    for (const s of plan.steps) expect(s.message.length).toBeLessThanOrEqual(LIMITS.messageMaxChars);
  });
});
