import { decodeFrames, InProcessBus, type Frame } from '@actionedx/shared';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FrameStream } from './frame-stream.js';

const bus = new InProcessBus();
afterEach(async () => {
  await bus.flush();
});

/** Frames as they arrive, and how many bus messages carried them. */
function capture(subject: string): Frame[] & { messages: number } {
  const frames = Object.assign([] as Frame[], { messages: 0 });
  bus.subscribe(subject, (m) => {
    frames.messages += 1;
    frames.push(...decodeFrames(m.data));
  });
  return frames;
}

const tick = () => new Promise((r) => setImmediate(r));

describe('FrameStream', () => {
  it('sends the first delta at once, then batches the deltas of one event-loop turn, with seq from 0', async () => {
    const frames = capture('f.batch');
    const out = new FrameStream({ bus, subject: 'f.batch', requestId: 'r1', attempt: 0, headers: {}, heartbeatMs: 10_000 });
    out.write('a');
    out.write('b');
    out.write('c');
    await tick();
    out.write('d');
    await tick();
    out.done({
      suggestions: [],
      model: 'm',
      mode: 'ally',
      task_type: 'collaboration',
      cached: false,
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
      cost_usd: 0,
      latency_ms: 1,
    });
    await bus.flush();
    expect(frames.map((f) => f.type)).toEqual(['chunk', 'chunk', 'chunk', 'done']);
    expect(frames[0]).toMatchObject({ seq: 0, delta: 'a' });
    expect(frames[1]).toMatchObject({ seq: 1, delta: 'bc' });
    expect(frames[2]).toMatchObject({ seq: 2, delta: 'd' });
    expect(frames[3]).toMatchObject({ chunks: 3, request_id: 'r1', attempt: 0 });
  });

  it('says reset only when chunks went out, then counts seq from 0 again; done counts the chunks after it', async () => {
    const frames = capture('f.reset');
    const out = new FrameStream({ bus, subject: 'f.reset', requestId: 'r9', attempt: 2, headers: {}, heartbeatMs: 10_000 });
    out.reset(); // nothing sent yet: an invisible fallback
    out.write('Hel');
    await tick();
    out.write('lo');
    out.reset(); // 'lo' was still batched: it is dropped, never sent
    out.write('Bye');
    await tick();
    out.done({
      suggestions: [],
      model: 'm2',
      mode: 'ally',
      task_type: 'collaboration',
      cached: false,
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
      cost_usd: 0,
      latency_ms: 1,
    });
    await bus.flush();
    expect(frames.map((f) => (f.type === 'chunk' ? `${f.seq}:${f.delta}` : f.type))).toEqual(['0:Hel', 'reset', '0:Bye', 'done']);
    expect(frames[1]).toEqual({ type: 'reset', request_id: 'r9', attempt: 2 });
    expect(frames[3]).toMatchObject({ chunks: 1 });
  });

  it('cuts a batch that grows past its size bound without waiting for the turn to end', async () => {
    const frames = capture('f.big');
    const out = new FrameStream({ bus, subject: 'f.big', requestId: 'r4', attempt: 0, headers: {}, heartbeatMs: 10_000 });
    out.write('first');
    for (let i = 0; i < 10; i++) out.write('x'.repeat(1000));
    await tick();
    await bus.flush();
    const chunks = frames.filter((f) => f.type === 'chunk');
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    expect(chunks.map((c) => (c.type === 'chunk' ? c.delta : '')).join('')).toBe('first' + 'x'.repeat(10_000));
  });

  it('sends pending text before an error, and nothing after the terminal frame', async () => {
    const frames = capture('f.err');
    const out = new FrameStream({ bus, subject: 'f.err', requestId: 'r2', attempt: 1, headers: {}, heartbeatMs: 10_000 });
    out.write('partial');
    out.error('upstream_error', 'boom', true);
    out.write('late');
    out.error('internal', 'again', true);
    await tick();
    await bus.flush();
    expect(frames.map((f) => f.type)).toEqual(['chunk', 'error']);
    expect(frames[1]).toMatchObject({ code: 'upstream_error', retryable: true, attempt: 1 });
  });

  it('sends the ack with the first frame, in one message, or alone after a short wait', async () => {
    const frames = capture('f.ack');
    const fast = new FrameStream({ bus, subject: 'f.ack', requestId: 'r5', attempt: 0, headers: {}, heartbeatMs: 10_000, ack: { workerId: 'w' } });
    fast.write('hit');
    fast.done({
      suggestions: [],
      model: 'm',
      mode: 'ally',
      task_type: 'collaboration',
      cached: true,
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
      cost_usd: 0,
      latency_ms: 1,
    });
    await bus.flush();
    expect(frames.map((f) => f.type)).toEqual(['ack', 'chunk', 'done']);
    expect(frames[0]).toEqual({ type: 'ack', request_id: 'r5', attempt: 0, worker_id: 'w' });
    expect(frames.messages).toBe(1);

    const slow = capture('f.ack.slow');
    const waiting = new FrameStream({ bus, subject: 'f.ack.slow', requestId: 'r6', attempt: 0, headers: {}, heartbeatMs: 10_000, ack: { workerId: 'w' } });
    await new Promise((r) => setTimeout(r, 30));
    expect(slow.map((f) => f.type)).toEqual(['ack']);
    waiting.error('cancelled', 'bye', false);
  });

  it('sends heartbeats while idle and stops them at the end', async () => {
    const frames = capture('f.hb');
    const out = new FrameStream({ bus, subject: 'f.hb', requestId: 'r3', attempt: 0, headers: {}, heartbeatMs: 20 });
    // However late a loaded machine runs the timers, heartbeats keep coming while nothing else is sent.
    await vi.waitFor(() => expect(frames.filter((f) => f.type === 'heartbeat').length).toBeGreaterThanOrEqual(2), { timeout: 5_000 });
    out.error('cancelled', 'bye', false);
    await bus.flush();
    const count = frames.filter((f) => f.type === 'heartbeat').length;
    await new Promise((r) => setTimeout(r, 60));
    expect(frames.filter((f) => f.type === 'heartbeat').length).toBe(count);
  });
});
