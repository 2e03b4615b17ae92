import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AppError,
  InProcessBus,
  createLogger,
  createMetricsRegistry,
  type ChatRequest,
} from '@actionedx/shared';
import { CancelRecorder, FakeWorker, answerWith, sleep, waitFor, metricValue } from '@actionedx/testkit';
import type { Registry } from 'prom-client';
import { createGatewayMetrics } from '../metrics.js';
import { GATEWAY_VERSION } from '../version.js';
import { ChatDispatcher, type ChatDispatcherOptions } from './chat-dispatcher.js';
import type { DispatchListener } from './dispatch-types.js';
import { parseChatRequest } from './request-validation.js';

const request: ChatRequest = parseChatRequest({ user_id: 'u1', message: 'Help me with a 9-Pillar audit' });
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

let bus: InProcessBus;
let registry: Registry;
let dispatcher: ChatDispatcher;
let cancels: CancelRecorder;
let workers: FakeWorker[];
let n = 0;

function setup(overrides: Partial<ChatDispatcherOptions> = {}): void {
  dispatcher?.close();
  registry = createMetricsRegistry('gateway', { defaultMetrics: false });
  dispatcher = new ChatDispatcher({
    bus,
    gatewayId: 'gw-test',
    ackTimeoutMs: 150,
    heartbeatMs: 40,
    requestTimeoutMs: 10_000,
    maxAttempts: 3,
    logger: createLogger({ service: 'gateway', version: GATEWAY_VERSION, level: 'silent', pretty: false }),
    metrics: createGatewayMetrics(registry),
    ...overrides,
  });
  dispatcher.start();
}

const worker = (opts: ConstructorParameters<typeof FakeWorker>[1]): FakeWorker => {
  const w = new FakeWorker(bus, opts);
  workers.push(w);
  return w;
};

/** Records what a streaming client would see. */
function recorder(): { events: string[]; listener: DispatchListener } {
  const events: string[] = [];
  return {
    events,
    listener: {
      onStart: () => events.push('start'),
      onChunk: (delta, seq) => events.push(`chunk:${seq}:${delta}`),
      onReset: () => events.push('reset'),
    },
  };
}

const ctx = () => ({ request_id: `req-${++n}`, traceparent: TRACEPARENT });

/** The cancels published for one request, in order, once the bus has delivered what is in flight. */
async function cancelsOf(requestId: string): Promise<Array<{ reason?: string | undefined; up_to_attempt?: number | undefined }>> {
  await bus.flush();
  return cancels.of(requestId);
}

const superseded = (attempt: number) => ({ reason: 'superseded', up_to_attempt: attempt });

async function rejection(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

beforeEach(() => {
  bus = new InProcessBus();
  cancels = new CancelRecorder(bus);
  workers = [];
  setup();
});

afterEach(async () => {
  dispatcher.close();
  for (const w of workers) w.stop();
  await bus.close();
});

describe('ChatDispatcher', () => {
  it('streams chunks in seq order and resolves with the whole answer', async () => {
    worker({ script: answerWith(['Hello', ', ', 'world']) });
    const { events, listener } = recorder();
    const c = ctx();
    const outcome = await dispatcher.dispatch(request, c, { listener });
    expect(events).toEqual(['start', 'chunk:0:Hello', 'chunk:1:, ', 'chunk:2:world']);
    expect(outcome).toMatchObject({
      response: 'Hello, world',
      suggestions: ['Try the next pillar'],
      model: 'mock-model',
      mode: 'strategist',
      task_type: 'realtime_tutoring',
      cached: false,
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      cost_usd: 0.0001,
      attempts: 1,
      worker_id: 'worker-a',
    });
    expect(dispatcher.inFlight).toBe(0);
    expect(await metricValue(registry, 'gateway_chat_outcomes_total', { outcome: 'done' })).toBe(1);
    // A request answered by its first worker tells no worker to stop.
    expect(await cancelsOf(c.request_id)).toEqual([]);
  });

  it('sends the job the protocol describes, with x-request-id and traceparent headers', async () => {
    const w = worker({ script: answerWith(['ok']) });
    const c = ctx();
    await dispatcher.dispatch(request, c);
    const { job, headers } = w.jobs[0]!;
    expect(job).toMatchObject({
      request_id: c.request_id,
      attempt: 0,
      reply_to: `chat.v1.frames.gw-test.${c.request_id}`,
      heartbeat_ms: 40,
      request,
    });
    expect(job.deadline_at).toBeGreaterThan(Date.now());
    expect(headers).toMatchObject({ 'x-request-id': c.request_id, traceparent: TRACEPARENT });
  });

  it('fails with no_workers at once when nobody listens', async () => {
    setup({ ackTimeoutMs: 5_000 });
    const started = Date.now();
    const c = ctx();
    const err = await rejection(dispatcher.dispatch(request, c));
    expect(err.code).toBe('no_workers');
    expect(err.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await cancelsOf(c.request_id)).toEqual([]);
  });

  it('sends once more when no ack comes, then fails with no_workers', async () => {
    const w = worker({ ack: false });
    const c = ctx();
    const err = await rejection(dispatcher.dispatch(request, c));
    expect(err.code).toBe('no_workers');
    expect(w.jobs.map((j) => j.job.attempt)).toEqual([0, 1]);
    // A worker may have taken a job without its ack arriving: each one it might hold is told to stop.
    expect(await cancelsOf(c.request_id)).toEqual([superseded(0), { reason: 'gave_up' }]);
    expect(await metricValue(registry, 'bus_request_retries_total', { reason: 'no_ack' })).toBe(1);
  });

  it('answers when the second attempt is acked', async () => {
    const w = worker({ ack: (job) => job.attempt > 0, script: answerWith(['second']) });
    const c = ctx();
    const outcome = await dispatcher.dispatch(request, c);
    expect(outcome.response).toBe('second');
    expect(outcome.attempts).toBe(2);
    expect(w.jobs).toHaveLength(2);
    expect(await cancelsOf(c.request_id)).toEqual([superseded(0)]);
  });

  it('retries on another worker when the first acks then goes silent', async () => {
    const dead = worker({ id: 'dead', dieAfterAck: true });
    const { events, listener } = recorder();
    const c = ctx();
    const pending = dispatcher.dispatch(request, c, { listener });
    await waitFor(() => dead.jobs.length === 1, 1_000, 'the first job');
    const alive = worker({ id: 'alive', script: answerWith(['whole ', 'answer']) });
    const outcome = await pending;
    expect(outcome).toMatchObject({ response: 'whole answer', attempts: 2, worker_id: 'alive' });
    expect(alive.jobs[0]!.job.attempt).toBe(1);
    // Nothing reached the client before the retry: it is invisible.
    expect(events).toEqual(['start', 'chunk:0:whole ', 'chunk:1:answer']);
    expect(await metricValue(registry, 'bus_request_retries_total', { reason: 'worker_lost' })).toBe(1);
    // The lost attempt is stopped, and only that one: the answer came from attempt 1.
    expect(await cancelsOf(c.request_id)).toEqual([superseded(0)]);
  });

  it('announces a reset when chunks were delivered before the worker was lost, then the whole answer', async () => {
    const first = worker({
      id: 'first',
      script: (ctl) => {
        ctl.chunk('Hel');
        ctl.chunk('lo');
        first.stop(); // dies mid-answer
      },
    });
    const { events, listener } = recorder();
    const c = ctx();
    const pending = dispatcher.dispatch(request, c, { listener });
    await waitFor(() => first.jobs.length === 1, 1_000, 'the first job');
    worker({ id: 'second', script: answerWith(['Hello', ' again']) });
    const outcome = await pending;
    expect(events).toEqual(['start', 'chunk:0:Hel', 'chunk:1:lo', 'reset', 'chunk:0:Hello', 'chunk:1: again']);
    expect(outcome.response).toBe('Hello again');
    expect(await cancelsOf(c.request_id)).toEqual([superseded(0)]);
  });

  it('passes a worker\'s reset on (its model failed mid-answer), then the whole new answer, on the same attempt', async () => {
    worker({
      script: (ctl) => {
        ctl.chunk('Hel');
        ctl.reset();
        ctl.answer(['Good', 'bye']);
      },
    });
    const { events, listener } = recorder();
    const outcome = await dispatcher.dispatch(request, ctx(), { listener });
    expect(events).toEqual(['start', 'chunk:0:Hel', 'reset', 'chunk:0:Good', 'chunk:1:bye']);
    expect(outcome).toMatchObject({ response: 'Goodbye', attempts: 1 });
  });

  it('keeps a worker that sends heartbeats (no retry while it works)', async () => {
    const w = worker({
      script: async (ctl) => {
        for (let i = 0; i < 8; i++) {
          await sleep(25);
          ctl.heartbeat();
        }
        ctl.answer(['slow but fine']);
      },
    });
    const outcome = await dispatcher.dispatch(request, ctx());
    expect(outcome).toMatchObject({ response: 'slow but fine', attempts: 1 });
    expect(w.jobs).toHaveLength(1);
  });

  it('retries on a gap in seq', async () => {
    worker({
      script: (ctl) => {
        if (ctl.job.attempt === 0) {
          ctl.chunk('a');
          ctl.chunk('c', 2); // seq 1 lost
          ctl.done();
        } else ctl.answer(['a', 'b', 'c']);
      },
    });
    const { events, listener } = recorder();
    const c = ctx();
    const outcome = await dispatcher.dispatch(request, c, { listener });
    expect(outcome).toMatchObject({ response: 'abc', attempts: 2 });
    expect(await cancelsOf(c.request_id)).toEqual([superseded(0)]);
    expect(events).toEqual(['start', 'chunk:0:a', 'reset', 'chunk:0:a', 'chunk:1:b', 'chunk:2:c']);
    expect(await metricValue(registry, 'bus_request_retries_total', { reason: 'sequence_gap' })).toBe(1);
  });

  it('retries when done counts other chunks than arrived', async () => {
    worker({
      script: (ctl) => {
        if (ctl.job.attempt === 0) {
          ctl.chunk('partial');
          ctl.done({ chunks: 3 });
        } else ctl.answer(['complete']);
      },
    });
    const c = ctx();
    const outcome = await dispatcher.dispatch(request, c);
    expect(outcome).toMatchObject({ response: 'complete', attempts: 2 });
    expect(await cancelsOf(c.request_id)).toEqual([superseded(0)]);
    expect(await metricValue(registry, 'bus_request_retries_total', { reason: 'chunk_mismatch' })).toBe(1);
  });

  it('drops frames of a superseded attempt', async () => {
    worker({
      script: async (ctl) => {
        if (ctl.job.attempt === 0) {
          await sleep(250); // presumed lost after 120 ms, then wakes up
          ctl.answer(['stale']);
        } else {
          for (let i = 0; i < 12; i++) {
            await sleep(25); // still working, while the stale attempt talks
            ctl.heartbeat();
          }
          ctl.answer(['fresh']);
        }
      },
    });
    const c = ctx();
    const outcome = await dispatcher.dispatch(request, c);
    expect(outcome).toMatchObject({ response: 'fresh', attempts: 2 });
    expect(await cancelsOf(c.request_id)).toEqual([superseded(0)]);
    expect(await metricValue(registry, 'gateway_frames_dropped_total', { reason: 'stale_attempt' })).toBeGreaterThan(0);
  });

  it('gives up after MAX_ATTEMPTS with worker_lost and tells workers to stop', async () => {
    const w = worker({ script: () => {} }); // acks, then says nothing
    const c = ctx();
    const err = await rejection(dispatcher.dispatch(request, c));
    expect(err.code).toBe('worker_lost');
    expect(w.jobs.map((j) => j.job.attempt)).toEqual([0, 1, 2]);
    // Each retry stops the attempt it replaces; giving up stops whatever may still run, the last attempt included.
    expect(await cancelsOf(c.request_id)).toEqual([superseded(0), superseded(1), { reason: 'gave_up' }]);
  });

  it('publishes a cancel with the request headers when the client goes away', async () => {
    setup({ heartbeatMs: 1_000 }); // no retry can come between: the one cancel is the client's
    worker({
      script: async (ctl) => {
        ctl.chunk('thinking');
        for (let i = 0; i < 50; i++) {
          await sleep(20);
          ctl.heartbeat();
        }
      },
    });
    const controller = new AbortController();
    const c = ctx();
    const { events, listener } = recorder();
    const pending = dispatcher.dispatch(request, c, { signal: controller.signal, listener });
    await waitFor(() => events.length === 2, 1_000, 'the first chunk');
    controller.abort();
    const err = await rejection(pending);
    expect(err.code).toBe('cancelled');
    await waitFor(() => cancels.has(c.request_id), 1_000, 'the cancel');
    expect(await cancelsOf(c.request_id)).toEqual([{ reason: 'client_gone' }]);
    const cancel = cancels.cancels.find((x) => x.message.request_id === c.request_id)!;
    expect(cancel.headers).toMatchObject({ 'x-request-id': c.request_id, traceparent: TRACEPARENT });
    expect(dispatcher.inFlight).toBe(0);
  });

  it('ends with deadline_exceeded at the deadline and cancels the work', async () => {
    setup({ requestTimeoutMs: 200, heartbeatMs: 1_000 }); // the deadline comes long before the watchdog could
    worker({
      script: async (ctl) => {
        for (let i = 0; i < 40; i++) {
          await sleep(20);
          ctl.heartbeat();
        }
      },
    });
    const c = ctx();
    const err = await rejection(dispatcher.dispatch(request, c));
    expect(err.code).toBe('deadline_exceeded');
    expect(await cancelsOf(c.request_id)).toEqual([{ reason: 'deadline' }]);
  });

  it("retries a worker's retryable shutting_down error, and passes other errors through", async () => {
    worker({
      script: (ctl) => (ctl.job.attempt === 0 ? ctl.error('shutting_down', 'draining', true) : ctl.answer(['ok'])),
    });
    const first = ctx();
    expect((await dispatcher.dispatch(request, first)).attempts).toBe(2);
    expect(await cancelsOf(first.request_id)).toEqual([superseded(0)]);
    for (const w of workers) w.stop();

    worker({ script: (ctl) => ctl.error('upstream_rate_limited', 'The model provider is rate limiting.', true) });
    const second = ctx();
    const err = await rejection(dispatcher.dispatch(request, second));
    expect(err).toMatchObject({ code: 'upstream_rate_limited', status: 503, retryable: true });
    // The worker ended the request itself: there is nothing left to stop.
    expect(await cancelsOf(second.request_id)).toEqual([]);
  });

  it('refuses a second request with an id already in flight', async () => {
    worker({ script: async (ctl) => (await sleep(50), ctl.answer(['one'])) });
    const c = ctx();
    const first = dispatcher.dispatch(request, c);
    const err = await rejection(dispatcher.dispatch(request, c));
    expect(err.code).toBe('busy');
    expect((await first).response).toBe('one');
  });

  it('ends requests in flight with shutting_down on close', async () => {
    worker({ script: () => {} });
    const c = ctx();
    const pending = dispatcher.dispatch(request, c);
    await sleep(20);
    dispatcher.close();
    expect((await rejection(pending)).code).toBe('shutting_down');
    expect(await cancelsOf(c.request_id)).toEqual([{ reason: 'shutdown' }]);
    expect((await rejection(dispatcher.dispatch(request, ctx()))).code).toBe('shutting_down');
  });

  it('keeps bookkeeping exact under many concurrent requests', async () => {
    worker({ script: answerWith(['x', 'y']) });
    worker({ id: 'worker-b', script: answerWith(['x', 'y']) });
    const outcomes = await Promise.all(Array.from({ length: 200 }, () => dispatcher.dispatch(request, ctx())));
    expect(outcomes.every((o) => o.response === 'xy')).toBe(true);
    expect(dispatcher.inFlight).toBe(0);
    expect(await metricValue(registry, 'gateway_requests_in_flight')).toBe(0);
  });
});
