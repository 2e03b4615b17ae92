import { randomUUID } from 'node:crypto';
import {
  createDbMetrics,
  createLogger,
  createMetricsRegistry,
  createQueueMetrics,
  decodeFrames,
  encodeJson,
  InProcessBus,
  MemoryWorkQueue,
  ChatRequestSchema,
  Subjects,
  userShard,
  type ChatJobInput,
  type QueuedChatJob,
  type Frame,
} from '@actionedx/shared';
import { createMockLlm, type ListeningMockLlm } from '@actionedx/mock-llm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCache, type Cache } from '../cache/index.js';
import { resolveRouting } from '../llm/index.js';
import { createOrchestrator, type Orchestrator } from '../orchestrator.js';
import { MemoryConversationStore } from '../store/index.js';
import { TaskRegistry } from '../tasks/index.js';
import type { ChatPipeline } from './chat-pipeline.js';
import { LookupLane } from './lookup-lane.js';
import { RunningJobs } from './running-jobs.js';

const PER_USER = 4;
const logger = createLogger({ service: 'orchestrator', version: 'test', level: 'silent' });

/**
 * The lookup lane's reservation of a queued miss, in one process (in-process bus, memory queue, memory cache): a
 * user's identical misses follow the one that was queued instead of filling the user's share of the queue.
 */
describe('lookup lane: identical misses of one user arriving at once', () => {
  const bus = new InProcessBus();
  let upstream: ListeningMockLlm;
  let store: MemoryConversationStore;
  let worker: Orchestrator | undefined;
  let registry: ReturnType<typeof createMetricsRegistry>;
  let queue: MemoryWorkQueue;
  let cache: Cache;

  /** `bypass`: misses may run in a model slot waiting on an empty queue (off: every miss through the queue). */
  const start = (slots: number, opts: { bypass?: boolean; perUser?: number } = {}): Orchestrator => {
    registry = createMetricsRegistry('orchestrator', { defaultMetrics: false });
    queue = new MemoryWorkQueue({ maxJobs: 100, maxPerUser: opts.perUser ?? PER_USER, ackWaitMs: 5_000, maxDeliver: 3, replicas: 1, maxAgeMs: 60_000 });
    cache = createCache({ registry, logger, name: 'lookup-lane-test' });
    worker = createOrchestrator({
      bus,
      cache,
      store,
      routing: resolveRouting({}, { models: Object.fromEntries(new TaskRegistry().all().map((t) => [t.taskType, t.model])) as never, apiKey: 'test', timeoutMs: 10_000, maxRetries: 0 }),
      defaultBaseUrl: upstream.url,
      tasks: new TaskRegistry(),
      logger,
      registry,
      workerId: 'lookup-lane-test',
      queue,
      maxInFlight: slots,
      bypassQueueWhenIdle: opts.bypass ?? false,
    });
    worker.start();
    return worker;
  };

  /**
   * Publishes one chat job and resolves with its terminal frame, the text of its chunks, every frame and when each
   * arrived (`performance.now()`). `before`: what to do with the job before it is published (e.g. queue it as the
   * gateway does when the lookup lane is late).
   */
  const ask = (
    user_id: string,
    message: string,
    extra: Record<string, unknown> = {},
    before?: (job: ChatJobInput) => Promise<void>,
  ): Promise<{ end: Frame; text: string; frames: Frame[]; at: number[] }> => {
    const request_id = randomUUID();
    const reply_to = Subjects.chatFrames('gw-test', request_id);
    let text = '';
    const frames: Frame[] = [];
    const at: number[] = [];
    return new Promise((resolve) => {
      const sub = bus.subscribe(reply_to, (m) => {
        for (const f of decodeFrames(m.data)) {
          frames.push(f);
          at.push(performance.now());
          if (f.type === 'chunk') text += f.delta;
          if (f.type === 'reset') text = '';
          if (f.type === 'done' || f.type === 'error') {
            sub.unsubscribe();
            resolve({ end: f, text, frames, at });
          }
        }
      });
      const job: ChatJobInput = { request_id, attempt: 0, reply_to, deadline_at: Date.now() + 20_000, heartbeat_ms: 1_000, request: { user_id, message, ...extra } };
      void (before ?? (() => Promise.resolve()))(job).then(() => bus.publish(Subjects.chatRequest, encodeJson(job), { reply: reply_to }));
    });
  };

  const completions = async (): Promise<number> => ((await (await fetch(`${new URL(upstream.url).origin}/mock/stats`)).json()) as { completions: number }).completions;

  const counter = async (name: string): Promise<number> => (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? 0;
  const mockConfig = (ttft_ms: number) =>
    fetch(`${new URL(upstream.url).origin}/mock/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ttft_ms }) });
  /** Longer than the model lane's proof that a waiting slot waits on an empty queue (20 ms). */
  const slotsSettle = () => new Promise((r) => setTimeout(r, 60));

  const reservations = async (outcome: string): Promise<number> => {
    const metric = await registry.getSingleMetric('cache_flight_reservations_total')?.get();
    return metric?.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  };

  beforeAll(async () => {
    upstream = await createMockLlm({ ttftMs: 0, tokensPerSecond: 0 }).listen(0, '127.0.0.1');
    store = new MemoryConversationStore({ metrics: createDbMetrics(createMetricsRegistry('orchestrator', { defaultMetrics: false })) });
  });
  afterEach(async () => {
    await worker?.stop(100);
    worker = undefined;
  });
  afterAll(async () => {
    await upstream.close();
    await bus.close();
  });

  it(`answers 20 identical requests with one model call, none refused by a share of ${PER_USER}`, async () => {
    start(2);
    const before = await completions();
    const user = `stampede-${randomUUID().slice(0, 8)}`;
    const message = `the same question ${randomUUID()}`;
    const lookups = vi.spyOn(cache.flights, 'lookup');
    const answers = await Promise.all(Array.from({ length: 20 }, () => ask(user, message)));
    // One lookup each: a request that finds the key reserved after its lookup follows it without looking again.
    expect(lookups).toHaveBeenCalledTimes(20);
    expect(answers.map((a) => a.end).filter((f) => f.type === 'error')).toEqual([]);
    expect(answers.every((a) => a.end.type === 'done')).toBe(true);
    expect(new Set(answers.map((a) => a.text)).size).toBe(1);
    expect(answers[0]!.text.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.end.type === 'done' && !a.end.cached)).toHaveLength(1);
    expect((await completions()) - before).toBe(1);
    expect(await reservations('reserved')).toBe(1);
    expect(await reservations('adopted')).toBe(1);
  });

  it("gives a refused miss's reservation back at once: its followers are refused too, not after the pending lease", async () => {
    start(PER_USER);
    const user = `greedy-${randomUUID().slice(0, 8)}`;
    // The user's whole share, held by slow misses that bypass the cache.
    await fetch(`${new URL(upstream.url).origin}/mock/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ttft_ms: 1_500 }) });
    try {
      const holding = Array.from({ length: PER_USER }, () => ask(user, `slow ${randomUUID()}`, { use_cache: false }));
      await new Promise((r) => setTimeout(r, 200));
      const started = performance.now();
      const refused = await Promise.all(Array.from({ length: 5 }, () => ask(user, `one more, the same ${user}`)));
      for (const r of refused) expect(r.end).toMatchObject({ type: 'error', code: 'overloaded' });
      // The pending lease is 10 s: the followers were let go when the queue refused the reserved miss.
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(await reservations('released')).toBeGreaterThanOrEqual(1);
      expect((await Promise.all(holding)).every((r) => r.end.type === 'done')).toBe(true);
    } finally {
      await fetch(`${new URL(upstream.url).origin}/mock/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ttft_ms: 0 }) });
    }
  }, 15_000);

  it('gives the reservation back when the gateway had queued the attempt already (its copy carries no token)', async () => {
    start(1);
    await fetch(`${new URL(upstream.url).origin}/mock/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ttft_ms: 400 }) });
    try {
      // The one slot is busy, so the gateway's copy waits in the queue while the lookup lane handles the same attempt.
      const holding = ask(`other-${randomUUID().slice(0, 8)}`, `slow ${randomUUID()}`, { use_cache: false });
      await new Promise((r) => setTimeout(r, 100));
      const user = `late-lane-${randomUUID().slice(0, 8)}`;
      const answer = ask(user, `asked once ${randomUUID()}`, {}, async (job) => {
        const queued: QueuedChatJob = { ...job, request: ChatRequestSchema.parse(job.request), queued_at: Date.now(), looked_up: false };
        await queue.enqueue(userShard(user), encodeJson(queued), { msgId: `${job.request_id}.${job.attempt}` });
      });
      // The lane's publish was a duplicate: the job the model lane runs cannot adopt the reservation, so the lane
      // let it go at once (else the gateway's copy would wait out the pending lease before taking the lock).
      await expect.poll(() => reservations('released'), { timeout: 5_000 }).toBe(1);
      expect(await reservations('reserved')).toBe(1);
      expect((await answer).end).toMatchObject({ type: 'done', cached: false });
      expect((await holding).end.type).toBe('done');
      expect(await reservations('adopted')).toBe(0);
    } finally {
      await fetch(`${new URL(upstream.url).origin}/mock/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ttft_ms: 0 }) });
    }
  }, 20_000);

  describe('QUEUE_BYPASS_WHEN_IDLE: a miss runs at once in a model slot waiting on an empty queue', () => {
    afterEach(() => mockConfig(0));
    const miss = () => ask(`u-${randomUUID().slice(0, 8)}`, `q ${randomUUID()}`, { use_cache: false });

    it('answers without a queued frame, as the first delivery, and counts it', async () => {
      start(2, { bypass: true });
      await slotsSettle();
      const a = await miss();
      expect(a.end).toMatchObject({ type: 'done', cached: false, delivery: 1 });
      expect(a.frames.some((f) => f.type === 'queued')).toBe(false);
      expect(a.frames.filter((f) => f.type === 'chunk').every((f) => f.delivery === 1)).toBe(true);
      expect(await counter('chat_queue_bypassed_total')).toBe(1);
      expect(await counter('chat_queue_enqueued_total')).toBe(0);
      expect(await queue.stats()).toMatchObject({ jobs: 0 });
    });

    it('queues every miss when it is off (the default)', async () => {
      start(2);
      await slotsSettle();
      // (Its `queued` frame may not be seen: the model lane can take the job before the lookup lane says it.)
      expect((await miss()).end).toMatchObject({ type: 'done', delivery: 1 });
      expect(await counter('chat_queue_bypassed_total')).toBe(0);
      expect(await counter('chat_queue_enqueued_total')).toBe(1);
    });

    it('keeps MAX_IN_FLIGHT: a lent slot does not pull, so the next miss waits in the queue until the loan ends', async () => {
      start(1, { bypass: true });
      await mockConfig(300);
      await slotsSettle();
      const first = miss();
      await new Promise((r) => setTimeout(r, 50));
      const [a, b] = await Promise.all([first, miss()]);
      expect([a.end.type, b.end.type]).toEqual(['done', 'done']);
      expect(a.frames.some((f) => f.type === 'queued')).toBe(false);
      expect(await counter('chat_queue_enqueued_total')).toBe(1);
      // The second one's model call began after the first one's answer ended: one slot, one call at a time.
      expect(b.at[b.frames.findIndex((f) => f.type === 'chunk')]!).toBeGreaterThanOrEqual(a.at[a.at.length - 1]!);
      expect(await counter('chat_queue_bypassed_total')).toBe(1);
    });

    it("counts loans against the user's share: past it, the user's misses go to the queue", async () => {
      start(3, { bypass: true, perUser: 1 });
      await mockConfig(200);
      await slotsSettle();
      const user = `u-${randomUUID().slice(0, 8)}`;
      const answers = await Promise.all([ask(user, `q ${randomUUID()}`, { use_cache: false }), ask(user, `q ${randomUUID()}`, { use_cache: false })]);
      expect(answers.map((a) => a.end.type)).toEqual(['done', 'done']);
      expect(await counter('chat_queue_bypassed_total')).toBe(1);
      expect(await counter('chat_queue_enqueued_total')).toBe(1);
    });

    it('stops a run on a lent slot when the gateway cancels it, and lends the slot again afterwards', async () => {
      start(1, { bypass: true });
      await mockConfig(2_000);
      await slotsSettle();
      const cancelled = ask(`u-${randomUUID().slice(0, 8)}`, `q ${randomUUID()}`, { use_cache: false }, async (job) => {
        setTimeout(() => bus.publish(Subjects.chatCancel, encodeJson({ request_id: job.request_id, reason: 'client_gone' })), 100);
      });
      expect((await cancelled).end).toMatchObject({ type: 'error', code: 'cancelled' });
      await mockConfig(0);
      await slotsSettle();
      const b = await miss();
      expect(b.end).toMatchObject({ type: 'done' });
      expect(b.frames.some((f) => f.type === 'queued')).toBe(false);
      expect(await counter('chat_queue_bypassed_total')).toBe(2);
    });
  });
});

describe('lookup lane: the same attempt taken over by the model lane meanwhile', () => {
  it('says nothing more (no cancelled error) when the model lane begins this attempt while the lane still works on it', async () => {
    const bus = new InProcessBus();
    const jobs = new RunningJobs();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // A pipeline whose lookup waits (as when it follows a reserved key) until the test lets it go, then misses.
    const pipeline = {
      prepare: async (req: ChatJobInput['request']) => ({ req, task: {}, key: 'k' }),
      answerStored: async (_turn: unknown, _out: unknown, signal: AbortSignal) => {
        await gate;
        if (signal.aborted) throw signal.reason;
        return false;
      },
      reserve: async () => 'unavailable' as const,
    } as unknown as ChatPipeline;
    const queue = new MemoryWorkQueue({ maxJobs: 10, maxPerUser: 10, ackWaitMs: 5_000, maxDeliver: 3, replicas: 1, maxAgeMs: 60_000 });
    const lane = new LookupLane({
      bus,
      pipeline,
      queue,
      jobs,
      workerId: 'w',
      logger,
      queueMetrics: createQueueMetrics(createMetricsRegistry('orchestrator', { defaultMetrics: false })),
      typicalJobMs: () => 1_000,
      queueDepth: () => undefined,
    });
    const request_id = randomUUID();
    const reply_to = Subjects.chatFrames('gw-test', request_id);
    const frames: Frame[] = [];
    bus.subscribe(reply_to, (m) => frames.push(...decodeFrames(m.data)));
    const job = { request_id, attempt: 0, reply_to, deadline_at: Date.now() + 10_000, heartbeat_ms: 1_000, request: ChatRequestSchema.parse({ user_id: 'u', message: 'hi' }) };
    const handled = lane.handle(job, {});
    await new Promise((r) => setTimeout(r, 20));
    // The model lane begins the gateway's own copy of this attempt (its first delivery) ...
    const modelRun = jobs.begin(job, 1);
    // ... then the lane's lookup ends.
    release();
    await handled;
    await bus.flush();
    expect(frames.filter((f) => f.type === 'error')).toEqual([]);
    expect(frames.some((f) => f.type === 'queued')).toBe(false);
    modelRun.end();
    await bus.close();
  });
});
