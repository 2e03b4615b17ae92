import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeFrames, encodeFrames } from './codec.js';
import type { Frame } from './frames.js';
import { RETAIN_BATCH_CHARS, RETAIN_BATCH_MS, RetainedFrames } from './retained-frames.js';

const chunk = (seq: number, delta = 'tok'): Frame => ({ type: 'chunk', request_id: 'r', attempt: 0, seq, delta });

describe('RetainedFrames: the batched copy of an answer kept for resumes', () => {
  afterEach(() => vi.useRealTimers());

  it('publishes the frames of one batch period as one message, in order, and the last frame at once', () => {
    vi.useFakeTimers();
    const sent: Array<{ subject: string; frames: Frame[] }> = [];
    const retained = new RetainedFrames('chat.v1.retained.gw.r', (subject, data) => sent.push({ subject, frames: decodeFrames(data) }));
    retained.add([{ type: 'ack', request_id: 'r', attempt: 0, worker_id: 'w' }, chunk(0)], false);
    retained.add([chunk(1)], false);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(RETAIN_BATCH_MS);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.subject).toBe('chat.v1.retained.gw.r');
    expect(sent[0]!.frames.map((f) => f.type)).toEqual(['ack', 'chunk', 'chunk']);
    retained.add([chunk(2)], false);
    retained.add([{ type: 'error', request_id: 'r', attempt: 0, code: 'cancelled', message: 'x', retryable: false }], true);
    expect(sent).toHaveLength(2);
    expect(sent[1]!.frames.map((f) => (f.type === 'chunk' ? f.seq : f.type))).toEqual([2, 'error']);
    vi.advanceTimersByTime(RETAIN_BATCH_MS * 5);
    expect(sent).toHaveLength(2); // nothing left, nothing sent twice
  });

  it("sends a batch that is one live message as that message's bytes, and encodes a batch of several", () => {
    vi.useFakeTimers();
    const sent: Uint8Array[] = [];
    const retained = new RetainedFrames('s', (_, data) => sent.push(data));
    // A cached answer: ack, chunk and done in one live message, the answer's only batch.
    const whole: Frame[] = [{ type: 'ack', request_id: 'r', attempt: 0, worker_id: 'w' }, chunk(0)];
    const live = encodeFrames(whole);
    retained.add(whole, true, live);
    expect(sent[0]).toBe(live);
    // Two live messages in one batch: one new message holding both, in order.
    retained.add([chunk(1)], false, encodeFrames([chunk(1)]));
    retained.add([chunk(2)], true, encodeFrames([chunk(2)]));
    expect(sent).toHaveLength(2);
    expect(decodeFrames(sent[1]!).map((f) => (f.type === 'chunk' ? f.seq : f.type))).toEqual([1, 2]);
    // A batch cut by the timer after one message, then a new batch of one: each sent as its own bytes.
    const third = encodeFrames([chunk(3)]);
    retained.add([chunk(3)], false, third);
    vi.advanceTimersByTime(RETAIN_BATCH_MS);
    expect(sent[2]).toBe(third);
  });

  it('cuts a batch at its text bound without waiting for the timer', () => {
    vi.useFakeTimers();
    const sent: Frame[][] = [];
    const retained = new RetainedFrames('s', (_, data) => sent.push(decodeFrames(data)));
    retained.add([chunk(0, 'x'.repeat(RETAIN_BATCH_CHARS - 1))], false);
    expect(sent).toHaveLength(0);
    retained.add([chunk(1, 'yy')], false);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toHaveLength(2);
  });

  it("keeps a copy only of a frame subject's answer, on its retained subject", () => {
    const subjects: string[] = [];
    RetainedFrames.forReplyTo('chat.v1.frames.gw.r', (subject) => subjects.push(subject))!.add([chunk(0)], true);
    expect(subjects).toEqual(['chat.v1.retained.gw.r']);
    expect(RetainedFrames.forReplyTo('_INBOX.abc', () => {})).toBeUndefined();
  });

  it('loses the copy quietly when the bus is closed (a resume falls back on the final answer)', () => {
    const retained = new RetainedFrames('s', () => {
      throw new Error('closed');
    });
    expect(() => retained.add([chunk(0)], true)).not.toThrow();
  });
});
