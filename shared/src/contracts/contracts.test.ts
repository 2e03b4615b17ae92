import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import { ChatRequestSchema, LIMITS } from './chat.js';
import { decodeFrame, decodeFrames, encodeFrame, encodeFrames } from './codec.js';
import type { Frame } from './frames.js';

describe('ChatRequestSchema', () => {
  it('applies defaults', () => {
    const r = ChatRequestSchema.parse({ user_id: 'u1', message: 'Hello' });
    expect(r).toEqual({
      user_id: 'u1',
      message: 'Hello',
      mode: 'strategist',
      task_type: 'realtime_tutoring',
      context: {},
      history: [],
      use_cache: true,
    });
  });

  it.each([
    [{ user_id: 'u', message: '   ' }, 'message is empty'],
    [{ user_id: 'u', message: 'x'.repeat(LIMITS.messageMaxChars + 1) }, 'longer than'],
    [{ user_id: 'u', message: 'hi', mode: 'wizard' }, 'mode'],
    [{ user_id: 'u', message: 'hi', task_type: 'poetry' }, 'task_type'],
    [{ message: 'hi' }, 'user_id'],
    [{ user_id: 'a b', message: 'hi' }, 'letters'],
    [{ user_id: 'u', message: 'hi', context: { big: 'x'.repeat(LIMITS.contextMaxBytes) } }, 'context'],
    [{ user_id: 'u', message: 'hi', use_cache: 'yes' }, 'use_cache'],
  ])('refuses %j', (input, hint) => {
    const r = ChatRequestSchema.safeParse(input);
    expect(r.success).toBe(false);
    const text = JSON.stringify(r.error!.issues);
    expect(text).toContain(hint);
  });
});

describe('frame codec', () => {
  const frames: Frame[] = [
    { type: 'ack', request_id: 'r', attempt: 0, worker_id: 'w' },
    { type: 'heartbeat', request_id: 'r', attempt: 1 },
    { type: 'chunk', request_id: 'r', attempt: 0, seq: 3, delta: 'héllo ✓' },
    {
      type: 'done',
      request_id: 'r',
      attempt: 0,
      chunks: 4,
      suggestions: ['a'],
      model: 'm',
      mode: 'ally',
      task_type: 'collaboration',
      cached: true,
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
      cost_usd: 0,
      latency_ms: 1.5,
    },
    { type: 'error', request_id: 'r', attempt: 0, code: 'upstream_error', message: 'x', retryable: true },
  ];

  it.each(frames)('round-trips a $type frame', (f) => {
    expect(decodeFrame(encodeFrame(f))).toEqual(f);
  });

  it('carries several frames in one message, in order, and reads a single frame as a list of one', () => {
    expect(decodeFrames(encodeFrames(frames))).toEqual(frames);
    expect(decodeFrames(encodeFrames([frames[2]!]))).toEqual([frames[2]]);
    expect(decodeFrames(encodeFrame(frames[0]!))).toEqual([frames[0]]);
    expect(() => decodeFrames(new TextEncoder().encode('[]'))).toThrow(AppError);
  });

  it('refuses bytes that are not a frame', () => {
    expect(() => decodeFrame(new TextEncoder().encode('{nope'))).toThrow(AppError);
    expect(() => decodeFrame(new TextEncoder().encode('{"type":"chunk","request_id":"r"}'))).toThrow(AppError);
  });
});
