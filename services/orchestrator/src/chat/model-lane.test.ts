import { randomUUID } from 'node:crypto';
import {
  createDbMetrics,
  createLogger,
  createMetricsRegistry,
  decodeFrames,
  encodeJson,
  InProcessBus,
  MemoryWorkQueue,
  Subjects,
  type ChatJobInput,
  type Frame,
  type QueuedMessage,
  type WorkQueue,
} from '@actionedx/shared';
import { createMockLlm, type ListeningMockLlm } from '@actionedx/mock-llm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from '../cache/index.js';
import { resolveRouting } from '../llm/index.js';
import { createOrchestrator, type Orchestrator } from '../orchestrator.js';
import { MemoryConversationStore } from '../store/index.js';
import { TaskRegistry } from '../tasks/index.js';

/** A worker the queue cannot see working: its progress signals are lost, as when its process is paused. */
function silentTo(queue: WorkQueue): WorkQueue {
  return {
    kind: queue.kind,
    limits: queue.limits,
    ready: () => queue.ready(),
    enqueue: (shard, data, opts) => queue.enqueue(shard, data, opts),
    stats: () => queue.stats(),
    close: async () => {},
    async pull(signal, expiresMs) {
      const m = await queue.pull(signal, expiresMs);
      if (!m) return m;
      const silent: QueuedMessage = { data: m.data, headers: m.headers, deliveryCount: m.deliveryCount, working: () => {}, ack: () => m.ack(), nak: (d) => m.nak(d) };
      return silent;
    },
  };
}

describe('model lane: a job redelivered while its first worker still runs it', () => {
  const bus = new InProcessBus();
  const logger = createLogger({ service: 'orchestrator', version: 'test', level: 'silent' });
  const queue = new MemoryWorkQueue({ maxJobs: 50, maxPerUser: 50, ackWaitMs: 1_000, maxDeliver: 3, replicas: 1, maxAgeMs: 60_000 });
  let upstream: ListeningMockLlm;
  let store: MemoryConversationStore;
  const workers: Orchestrator[] = [];

  const worker = (id: string, q: WorkQueue, slots: number): Orchestrator => {
    const registry = createMetricsRegistry('orchestrator', { defaultMetrics: false });
    const o = createOrchestrator({
      bus,
      cache: createCache({ registry, logger, name: id }),
      store,
      routing: resolveRouting({}, { models: Object.fromEntries(new TaskRegistry().all().map((t) => [t.taskType, t.model])) as never, apiKey: 'test', timeoutMs: 10_000, maxRetries: 0 }),
      defaultBaseUrl: upstream.url,
      tasks: new TaskRegistry(),
      logger,
      registry,
      workerId: id,
      queue: q,
      maxInFlight: slots,
      // Every job through the queue: this is about its redelivery.
      bypassQueueWhenIdle: false,
    });
    workers.push(o);
    return o;
  };

  beforeAll(async () => {
    upstream = await createMockLlm({ ttftMs: 1_500, tokensPerSecond: 0 }).listen(0, '127.0.0.1');
    const registry = createMetricsRegistry('orchestrator', { defaultMetrics: false });
    store = new MemoryConversationStore({ metrics: createDbMetrics(registry) });
  });
  afterAll(async () => {
    for (const w of workers) await w.stop(100);
    await upstream.close();
    await bus.close();
  });

  it('goes to another worker after the ack wait, both finish, and the ledger records the turn once', async () => {
    // One slot: the stalled worker cannot take its own job's redelivery.
    const a = worker('stalled', silentTo(queue), 1);
    a.start();
    const request_id = randomUUID();
    const reply_to = Subjects.chatFrames('gw-test', request_id);
    const frames: Frame[] = [];
    const bothDone = new Promise<void>((resolve) =>
      bus.subscribe(reply_to, (m) => {
        for (const f of decodeFrames(m.data)) frames.push(f);
        if (frames.filter((f) => f.type === 'done').length === 2) resolve();
      }),
    );
    const user_id = `u-${randomUUID().slice(0, 8)}`;
    const job: ChatJobInput = { request_id, attempt: 0, reply_to, deadline_at: Date.now() + 20_000, heartbeat_ms: 200, request: { user_id, message: 'twice?', use_cache: false } };
    bus.publish(Subjects.chatRequest, encodeJson(job), { reply: reply_to });
    await expect.poll(() => frames.some((f) => f.delivery === 1), { timeout: 2_000 }).toBe(true);
    // A second worker, started once the first holds the job: it gets the job only through redelivery.
    worker('healthy', queue, 2).start();
    await bothDone;
    const done = frames.filter((f) => f.type === 'done');
    expect(done.map((f) => f.delivery).sort()).toEqual([1, 2]);
    expect(frames.find((f) => f.type === 'queued')).toMatchObject({ redelivery_ms: 1_000 });
    // Billed once: one ledger entry for the request, with the model's usage.
    await expect.poll(async () => (await store.usage({ user_id })).requests).toBe(1);
    expect((await store.usage({ user_id })).completion_tokens).toBeGreaterThan(0);
    expect(await queue.stats()).toMatchObject({ jobs: 0 });
  }, 15_000);
});
