import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import {
  AppError,
  ChatRequestSchema,
  createAiMetrics,
  createDbMetrics,
  createLogger,
  decodeFrames,
  InProcessBus,
  TASK_TYPES,
  type ChatRequestInput,
  type Frame,
  type TaskType,
} from '@actionedx/shared';
import { createCache, type Cache } from '../cache/index.js';
import { PriceTable, type Completion, type ModelRouter, type RouteRequest } from '../llm/index.js';
import { MemoryConversationStore } from '../store/index.js';
import { TaskRegistry, type TaskOverrides } from '../tasks/index.js';
import { ChatPipeline } from './chat-pipeline.js';
import { FrameStream } from './frame-stream.js';

/**
 * The pipeline on its own: an in-memory cache, a model the test scripts, frames read back from an in-process
 * bus. What a user is promised about the cache is checked here with literal figures (the README's), so a
 * change of policy in the code cannot move the expectation with it.
 */

/** Who shares a cached answer, per task type (README, "Cache sharing defaults"). */
const PER_USER: TaskType[] = ['strategy_audit', 'collaboration', 'ethical_assessment'];
const SHARED: TaskType[] = ['realtime_tutoring', 'framework_alignment'];
/** The seed's TTLs in seconds: 24 h, 30 min, 1 h, 2 h, 12 h. */
const SEED_TTLS: Record<TaskType, number> = {
  strategy_audit: 86_400,
  realtime_tutoring: 1_800,
  collaboration: 3_600,
  framework_alignment: 7_200,
  ethical_assessment: 43_200,
};

const ANSWER = ['A clear answer, long enough to pass the quality check. ', '\n\nSuggestions:\n- Go deeper\n- Try an example'];
const USAGE = { prompt_tokens: 12, completion_tokens: 34, total_tokens: 46 };

interface Script {
  parts?: string[];
  finishReason?: string;
  /** Thrown after the parts. */
  fail?: Error;
  /** Streams the parts, then waits until the call is aborted and throws its reason (as the SDK client does). */
  hang?: boolean;
  /** Waits this long before the first part. */
  delayMs?: number;
}

/** The model router as the pipeline calls it: each call streams the script's parts and finishes as it says. */
class ScriptedModel {
  /** Each call, with the model its task type routes to. */
  readonly calls: Array<RouteRequest & { model: string }> = [];
  script: Script = {};

  constructor(private readonly tasks: TaskRegistry) {}

  async complete(route: RouteRequest): Promise<Completion> {
    const req = { ...route, model: this.tasks.get(route.taskType).model };
    this.calls.push(req);
    const { parts = ANSWER, finishReason = 'stop', fail, hang, delayMs } = this.script;
    if (delayMs !== undefined) await new Promise((r) => setTimeout(r, delayMs));
    for (const p of parts) req.onDelta(p);
    if (fail) throw fail;
    if (hang) {
      await new Promise((_, reject) => req.signal.addEventListener('abort', () => reject(req.signal.reason as Error), { once: true }));
    }
    return { text: parts.join(''), usage: USAGE, usageEstimated: false, finishReason, model: req.model, requestedModel: req.model, target: 'scripted' };
  }
}

/** Every log line of the pipeline, parsed. */
let logLines: Array<Record<string, unknown>> = [];
const logger = createLogger({
  service: 'pipeline-test',
  version: 'test',
  level: 'debug',
  destination: { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) },
});
const bus = new InProcessBus();

let model: ScriptedModel;
let cache: Cache;
let store: MemoryConversationStore;
let pipeline: ChatPipeline;
let stored: MockInstance<Cache['store']['set']>;

function build(overrides: TaskOverrides = {}): void {
  logLines = [];
  const registry = new Registry();
  const tasks = new TaskRegistry(overrides);
  model = new ScriptedModel(tasks);
  cache = createCache({ registry, logger, name: 'pipeline-test' });
  stored = vi.spyOn(cache.store, 'set');
  store = new MemoryConversationStore({ metrics: createDbMetrics(registry) });
  pipeline = new ChatPipeline({
    registry: tasks,
    router: model as unknown as ModelRouter,
    prices: new PriceTable(),
    flights: cache.flights,
    store,
    metrics: createAiMetrics(registry),
    logger,
  });
}

beforeEach(() => build());
afterEach(async () => {
  await cache.close();
  await bus.flush();
});

/** One request through the pipeline: its frames, text and terminal frame. */
async function ask(input: Omit<ChatRequestInput, 'user_id'> & { user_id?: string }, signal = new AbortController().signal) {
  const subject = `pipeline.test.${randomUUID()}`;
  const frames: Frame[] = [];
  const sub = bus.subscribe(subject, (m) => frames.push(...decodeFrames(m.data)));
  const out = new FrameStream({ bus, subject, requestId: 'r', attempt: 0, headers: {}, heartbeatMs: 60_000 });
  await pipeline.run(ChatRequestSchema.parse({ user_id: 'alice', ...input }), out, signal, randomUUID());
  await bus.flush();
  sub.unsubscribe();
  const terminals = frames.filter((f) => f.type === 'done' || f.type === 'error');
  expect(terminals).toHaveLength(1);
  const text = frames.map((f) => (f.type === 'chunk' ? f.delta : '')).join('');
  return { frames, text, terminal: terminals[0]! };
}

const keysStored = () => stored.mock.calls.map(([key]) => key);

describe('ChatPipeline', () => {
  it('answers a miss from the model and stores it; the repeat is a hit with no usage and no cost', async () => {
    const message = 'What is spaced repetition?';
    const first = await ask({ message });
    expect(first.text).toBe(ANSWER.join(''));
    expect(first.terminal).toMatchObject({
      type: 'done',
      cached: false,
      model: 'gpt-4o-mini',
      mode: 'strategist',
      task_type: 'realtime_tutoring',
      suggestions: ['Go deeper', 'Try an example'],
      usage: USAGE,
      // gpt-4o-mini: $0.15 and $0.60 per million prompt and completion tokens.
      cost_usd: (12 * 0.15 + 34 * 0.6) / 1e6,
    });
    expect(first.terminal).toHaveProperty('ttft_ms');
    expect(model.calls).toHaveLength(1);
    expect(model.calls[0]).toMatchObject({ model: 'gpt-4o-mini', maxTokens: 600 });
    expect(keysStored()).toHaveLength(1);

    const second = await ask({ message });
    expect(second.text).toBe(first.text);
    expect(second.terminal).toMatchObject({
      type: 'done',
      cached: true,
      suggestions: ['Go deeper', 'Try an example'],
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
      cost_usd: 0,
    });
    expect(model.calls).toHaveLength(1);
  });

  it('reports latency and time to first token in milliseconds, consistent with the time the answer took', async () => {
    model.script = { delayMs: 50 };
    const started = performance.now();
    const { terminal } = await ask({ message: 'Take your time' });
    const elapsed = performance.now() - started;
    if (terminal.type !== 'done') throw new Error(`expected done, got ${terminal.type}`);
    // The model took 50 ms before its first token: both figures include that, and neither exceeds the whole.
    expect(terminal.ttft_ms).toBeGreaterThanOrEqual(40);
    expect(terminal.latency_ms).toBeGreaterThanOrEqual(terminal.ttft_ms!);
    expect(terminal.latency_ms).toBeLessThanOrEqual(elapsed + 1);
    expect(Number.isInteger(Math.round(terminal.latency_ms * 100))).toBe(true);
  });

  it('ends an answer without any text with done and no time to first token', async () => {
    model.script = { parts: [] };
    const r = await ask({ message: 'Say nothing' });
    expect(r.text).toBe('');
    expect(r.terminal).toMatchObject({ type: 'done', cached: false });
    expect(r.terminal).not.toHaveProperty('ttft_ms');
  });

  it('answers even when the conversation store fails, and logs why', async () => {
    const broken = new Error('store down');
    vi.spyOn(store, 'appendTurn').mockRejectedValue(broken);
    expect((await ask({ message: 'Remember me' })).terminal).toMatchObject({ type: 'done', cached: false });
    await vi.waitFor(() => expect(logLines.some((l) => l.msg === 'could not store the conversation turn' && l.level === 'warn')).toBe(true));
    expect(logLines.find((l) => l.msg === 'could not store the conversation turn')).toMatchObject({ err: { message: 'store down' } });
  });

  it('puts the terminal frame on the bus before the turn is recorded: metrics, log line and ledger do not delay it', async () => {
    const order: string[] = [];
    const publish = bus.publish.bind(bus);
    const published = vi.spyOn(bus, 'publish').mockImplementation((subject, data, opts) => {
      if (decodeFrames(data).some((f) => f.type === 'done')) {
        const logged = logLines.some((l) => l.msg === 'chat answered');
        order.push(logged ? 'done (after the log line)' : 'done');
      }
      publish(subject, data, opts);
    });
    vi.spyOn(store, 'appendTurn').mockImplementation(async () => {
      order.push('ledger');
    });
    try {
      await ask({ message: 'Quick, please' });
      await vi.waitFor(() => expect(order).toContain('ledger'));
      expect(order).toEqual(['done', 'ledger']);
      expect(logLines.some((l) => l.msg === 'chat answered')).toBe(true);
    } finally {
      published.mockRestore();
    }
  });

  it('logs an unexpected failure at error with its cause, and a known one at warn with its code', async () => {
    model.script = { fail: new TypeError('bug in the code') };
    await ask({ message: 'Unexpected' });
    expect(logLines.find((l) => l.msg === 'chat request failed')).toMatchObject({ level: 'error', err: { message: 'bug in the code' } });
    logLines = [];
    model.script = { fail: new AppError('upstream_rate_limited') };
    await ask({ message: 'Known' });
    expect(logLines.find((l) => l.msg === 'chat request ended with an error')).toMatchObject({ level: 'warn', code: 'upstream_rate_limited' });
    expect(logLines.some((l) => l.level === 'error')).toBe(false);
  });

  it('records every turn in the ledger; a cached turn adds no tokens and no cost', async () => {
    await ask({ message: 'Count me twice', user_id: 'ledger' });
    await ask({ message: 'Count me twice', user_id: 'ledger' });
    await expect.poll(async () => (await store.usage({ user_id: 'ledger' })).requests).toBe(2);
    expect(await store.usage({ user_id: 'ledger' })).toMatchObject({
      requests: 2,
      cached: 1,
      prompt_tokens: USAGE.prompt_tokens,
      completion_tokens: USAGE.completion_tokens,
    });
  });

  it('knows the sharing of every task type', () => {
    expect([...PER_USER, ...SHARED].sort()).toEqual([...TASK_TYPES].sort());
  });

  it.each(PER_USER)("keeps %s answers per user: alice's repeat is a hit, bob's same question a miss under a key of his own", async (task_type) => {
    const message = `Assess our plan ${randomUUID()}`;
    expect((await ask({ message, task_type, user_id: 'alice' })).terminal).toMatchObject({ type: 'done', cached: false });
    expect((await ask({ message, task_type, user_id: 'alice' })).terminal).toMatchObject({ type: 'done', cached: true });
    expect((await ask({ message, task_type, user_id: 'bob' })).terminal).toMatchObject({ type: 'done', cached: false });
    expect(model.calls).toHaveLength(2);
    const [alice, bob] = keysStored();
    expect(alice).toMatch(new RegExp(`^ai_cache:${task_type}:[0-9a-f]{64}$`));
    expect(bob).toMatch(new RegExp(`^ai_cache:${task_type}:[0-9a-f]{64}$`));
    expect(bob).not.toBe(alice);
  });

  it.each(SHARED)("shares %s answers: bob's same question is answered from alice's entry", async (task_type) => {
    const message = `Explain the loop ${randomUUID()}`;
    expect((await ask({ message, task_type, user_id: 'alice' })).terminal).toMatchObject({ type: 'done', cached: false });
    expect((await ask({ message, task_type, user_id: 'bob' })).terminal).toMatchObject({ type: 'done', cached: true });
    expect(model.calls).toHaveLength(1);
    expect(keysStored()).toHaveLength(1);
  });

  it.each(Object.entries(SEED_TTLS))('stores a %s answer for %i seconds', async (task_type, ttl) => {
    await ask({ message: 'How long will you keep this?', task_type: task_type as TaskType });
    expect(stored).toHaveBeenCalledTimes(1);
    expect(stored.mock.calls[0]![2]).toBe(ttl);
  });

  it('stores each answer for the TTL the operator configured', async () => {
    const configured = { strategy_audit: 101, realtime_tutoring: 202, collaboration: 303, framework_alignment: 404, ethical_assessment: 505 };
    build({ ttlSeconds: configured });
    for (const task_type of TASK_TYPES) await ask({ message: 'Configured TTL', task_type });
    expect(stored.mock.calls.map(([key, , ttl]) => [key.split(':')[1], ttl])).toEqual(Object.entries(configured));
  });

  it.each([
    ['cut at max_tokens (finish_reason length)', { finishReason: 'length' }],
    ['near-empty', { parts: ['Too short.'] }],
  ])('answers but never stores an answer that failed the quality check (%s); the repeat asks the model again', async (_what, script) => {
    model.script = script;
    const first = await ask({ message: 'Fail the check' });
    const second = await ask({ message: 'Fail the check' });
    for (const r of [first, second]) expect(r.terminal).toMatchObject({ type: 'done', cached: false, usage: USAGE });
    expect(second.text).toBe(first.text);
    expect(model.calls).toHaveLength(2);
    expect(stored).not.toHaveBeenCalled();
  });

  it('bypasses the cache on use_cache: false, neither reading nor storing', async () => {
    await ask({ message: 'Fresh, please' });
    const bypass = await ask({ message: 'Fresh, please', use_cache: false });
    expect(bypass.terminal).toMatchObject({ type: 'done', cached: false, usage: USAGE });
    expect(model.calls).toHaveLength(2);
    expect(stored).toHaveBeenCalledTimes(1);
  });

  it("ends with the model's error, retryable as its code says, and stores nothing", async () => {
    model.script = { parts: ['Half an ans'], fail: new AppError('upstream_rate_limited') };
    const r = await ask({ message: 'Rate limited' });
    expect(r.terminal).toMatchObject({ type: 'error', code: 'upstream_rate_limited', retryable: true });
    expect(stored).not.toHaveBeenCalled();
  });

  it('ends with internal for an unexpected failure, without its message', async () => {
    model.script = { fail: new TypeError('secret detail at /srv/app.js:12') };
    const r = await ask({ message: 'Boom' });
    expect(r.terminal).toMatchObject({ type: 'error', code: 'internal', retryable: true });
    expect(JSON.stringify(r.terminal)).not.toContain('secret detail');
  });

  it.each([
    ['deadline_exceeded', new AppError('deadline_exceeded')],
    ['cancelled', new AppError('cancelled')],
  ])('ends with %s when the request is aborted with it mid-answer, and stores nothing', async (code, reason) => {
    model.script = { hang: true };
    const controller = new AbortController();
    const pending = ask({ message: `Abort me ${code}` }, controller.signal);
    await vi.waitFor(() => expect(model.calls).toHaveLength(1));
    controller.abort(reason);
    const r = await pending;
    expect(r.text).toBe(ANSWER.join(''));
    expect(r.terminal).toMatchObject({ type: 'error', code });
    expect(stored).not.toHaveBeenCalled();
  });
});
