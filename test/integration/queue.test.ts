import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counterSum, mockCompletions, mockStats, postJson, postSse, resetMockPeak, setMock, startStack, WsClient, type Stack } from '@actionedx/testkit';

const SLOTS = 3;
const QUEUE_MAX = 24;
const PER_USER = 6;

/** Admission: bounded model calls per worker, cached answers beside them, a bounded queue with clear refusals. */
describe('work queue: two orchestrators with 3 model slots each, a queue of 24 (6 per user)', () => {
  let stack: Stack;
  const chat = (body: Record<string, unknown>) => postJson(`${stack.url}/api/assistant/chat`, body);
  const miss = (user: string) => chat({ user_id: user, message: `miss ${randomUUID()}`, use_cache: false });

  beforeAll(async () => {
    stack = await startStack({ auth: 'open', 
      orchestrators: 2,
      orchestratorEnv: { MAX_IN_FLIGHT: String(SLOTS), QUEUE_MAX: String(QUEUE_MAX), QUEUE_MAX_PER_USER: String(PER_USER) },
      mockLlmEnv: { MOCK_LLM_COMPLETION_TOKENS: '12' },
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs at most MAX_IN_FLIGHT model calls per worker; the rest wait in the queue and are all answered', async () => {
    await setMock(stack.mockLlm.url, { ttft_ms: 300 });
    await resetMockPeak(stack.mockLlm.url);
    const results = await Promise.all(Array.from({ length: 18 }, (_, i) => miss(`cap-${i}`)));
    expect(results.map((r) => r.status)).toEqual(Array(18).fill(200));
    const { peak_in_flight } = await mockStats(stack.mockLlm.url);
    // Two workers, three slots each: the model never saw more than six calls at once, and saw six.
    expect(peak_in_flight).toBe(2 * SLOTS);
    const waited = await Promise.all(stack.orchestrators.map(async (o) => counterSum(await (await fetch(`${o.url}/metrics`)).text(), 'chat_queue_wait_seconds_count')));
    expect(waited.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(18);
  });

  it('answers cached questions at once while every slot is busy', async () => {
    const cached = { user_id: 'reader', message: `cached ${randomUUID()}` };
    await setMock(stack.mockLlm.url, { ttft_ms: 0 });
    expect((await chat(cached)).status).toBe(200);
    await setMock(stack.mockLlm.url, { ttft_ms: 2_000 });
    const busy = Array.from({ length: 12 }, (_, i) => miss(`saturate-${i}`));
    await new Promise((r) => setTimeout(r, 300));
    const slots = await Promise.all(stack.orchestrators.map(async (o) => counterSum(await (await fetch(`${o.url}/metrics`)).text(), 'chat_worker_slots', (l) => l.includes('busy'))));
    expect(slots).toEqual([SLOTS, SLOTS]);
    const timings: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const r = await chat(cached);
      timings.push(performance.now() - t0);
      expect(r.status).toBe(200);
      expect(r.body.cached).toBe(true);
    }
    // Hits never wait for a slot: well under the model's 2 s, while six calls hold every slot.
    expect(Math.max(...timings)).toBeLessThan(250);
    expect((await Promise.all(busy)).every((r) => r.status === 200)).toBe(true);
    await setMock(stack.mockLlm.url, { ttft_ms: 0 });
  }, 30_000);

  it("refuses a user's jobs beyond their share at once: 503 overloaded with Retry-After; others still get in", async () => {
    await setMock(stack.mockLlm.url, { ttft_ms: 1_500 });
    const started = performance.now();
    const timed = (p: Promise<Awaited<ReturnType<typeof miss>>>) => p.then((r) => ({ ...r, ms: performance.now() - started }));
    const mine = await Promise.all(Array.from({ length: PER_USER + 4 }, () => timed(miss('greedy'))));
    const refused = mine.filter((r) => r.status === 503);
    expect(mine.filter((r) => r.status === 200)).toHaveLength(PER_USER);
    expect(refused).toHaveLength(4);
    for (const r of refused) {
      expect(r.body.error).toMatchObject({ code: 'overloaded', retryable: true });
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(r.body.error.retry_after_ms).toBe(Number(r.headers.get('retry-after')) * 1000);
      // Refused within tens of milliseconds, not after the model's 1.5 s.
      expect(r.ms).toBeLessThan(500);
    }
    await setMock(stack.mockLlm.url, { ttft_ms: 0 });
  }, 30_000);

  it("answers a user's 20 identical requests with one model call while every slot is busy: the queued miss's followers take no share", async () => {
    // Six slow misses of other users hold every slot, so the burst below waits in the queue (the time during which
    // each identical miss used to be queued too, and all past the user's share of 6 refused).
    await setMock(stack.mockLlm.url, { ttft_ms: 800 });
    const before = await mockCompletions(stack.mockLlm.url);
    const fillers = Array.from({ length: 2 * SLOTS }, (_, i) => miss(`filler-${i}`));
    await new Promise((r) => setTimeout(r, 200));
    // The question itself is answered at once when its turn comes.
    await setMock(stack.mockLlm.url, { ttft_ms: 0 });
    const body = { user_id: `stampede-${randomUUID().slice(0, 8)}`, message: `the same question ${randomUUID()}` };
    const results = await Promise.all(Array.from({ length: 20 }, () => chat(body)));
    expect(results.filter((r) => r.status !== 200).map((r) => r.body.error?.code)).toEqual([]);
    expect(new Set(results.map((r) => r.body.response)).size).toBe(1);
    expect(results.filter((r) => !r.body.cached)).toHaveLength(1);
    expect((await Promise.all(fillers)).every((r) => r.status === 200)).toBe(true);
    // The fillers' six calls, and one for the twenty.
    expect((await mockCompletions(stack.mockLlm.url)) - before).toBe(2 * SLOTS + 1);
  }, 30_000);

  it('refuses beyond the whole queue, on REST, SSE (a plain 503 before any stream) and WebSocket', async () => {
    await setMock(stack.mockLlm.url, { ttft_ms: 1_200 });
    // Fill the queue: 24 jobs from four users (six each).
    const filling = Array.from({ length: QUEUE_MAX }, (_, i) => miss(`filler-${i % 4}`));
    await new Promise((r) => setTimeout(r, 400));
    const t0 = performance.now();
    const rest = await miss('latecomer');
    const restMs = performance.now() - t0;
    expect(rest.status).toBe(503);
    expect(rest.body.error.code).toBe('overloaded');
    expect(rest.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(restMs).toBeLessThan(300);

    const sse = await fetch(`${stack.url}/api/assistant/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ user_id: 'latecomer-sse', message: `sse ${randomUUID()}`, use_cache: false }),
    });
    expect(sse.status).toBe(503);
    expect(sse.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await sse.json()) as { error: { code: string } }).error.code).toBe('overloaded');

    const ws = await WsClient.open(`${stack.wsUrl}/ws/assistant/s-${randomUUID().slice(0, 8)}?user_id=latecomer-ws`);
    ws.send({ message: `ws ${randomUUID()}`, use_cache: false });
    const err = await ws.next((m) => m.type === 'error');
    expect(err).toMatchObject({ code: 'overloaded', retryable: true });
    expect(err.retry_after_ms).toBeGreaterThanOrEqual(1000);
    ws.close();

    expect((await Promise.all(filling)).every((r) => r.status === 200)).toBe(true);
    const rejections = await Promise.all(stack.orchestrators.map(async (o) => counterSum(await (await fetch(`${o.url}/metrics`)).text(), 'chat_queue_rejections_total', (l) => l.includes('queue_full'))));
    expect(rejections.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3);
    await setMock(stack.mockLlm.url, { ttft_ms: 0 });
  }, 30_000);

  it('streams a queued answer over SSE with one start and the whole text', async () => {
    const { status, events } = await postSse(`${stack.url}/api/assistant/chat`, { user_id: 'sse-user', message: `stream ${randomUUID()}`, use_cache: false });
    expect(status).toBe(200);
    const names = events.map((e) => e.event);
    expect(names[0]).toBe('start');
    expect(names.filter((n) => n === 'start')).toHaveLength(1);
    expect(names.at(-1)).toBe('done');
    expect(names).not.toContain('reset');
  });
});
