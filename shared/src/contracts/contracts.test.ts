import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import { CachePatternSchema, cachePatternSchema, parseCachePattern } from './cache.js';
import { ChatRequestSchema, LIMITS, jsonDepthExceeds } from './chat.js';
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

  it('takes a message of exactly 16,000 characters, the documented limit, and no more', () => {
    expect(LIMITS.messageMaxChars).toBe(16_000);
    expect(ChatRequestSchema.safeParse({ user_id: 'u', message: 'x'.repeat(16_000) }).success).toBe(true);
    expect(ChatRequestSchema.safeParse({ user_id: 'u', message: 'x'.repeat(16_001) }).success).toBe(false);
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

describe('cache invalidation patterns', () => {
  it.each([
    ['ai_cache:*', 'ai_cache:*'],
    ['ai_cache:collaboration:*', 'ai_cache:collaboration:*'],
    ['ai_cache:strategy_audit:ab12?f*', 'ai_cache:strategy_audit:ab12?f*'],
    ['ai_cache:x-y_z:1', 'ai_cache:x-y_z:1'],
    ['*', 'ai_cache:*'],
  ])('accepts %s as %s', (pattern, scan) => {
    expect(CachePatternSchema.parse(pattern)).toBe(scan);
    expect(parseCachePattern(pattern)).toBe(scan);
  });

  it.each([
    '',
    '**',
    '?',
    'ai_cache',
    'ai_cache:',
    'xai_cache:*',
    'ws_session:*',
    'ai_cache:a.b',
    'ai_cache:[a-z]*',
    'ai_cache:\\*',
    'ai_cache:a b',
    'ai_cache:é',
    `ai_cache:${'x'.repeat(248)}`,
  ])('refuses %j with invalid_pattern', (pattern) => {
    expect(CachePatternSchema.safeParse(pattern).success).toBe(false);
    expect(() => parseCachePattern(pattern)).toThrow(expect.objectContaining({ code: 'invalid_pattern' }));
  });

  it('takes 256 characters, not 257', () => {
    const at = `ai_cache:${'x'.repeat(256 - 9)}`;
    expect(parseCachePattern(at)).toBe(at);
    expect(() => parseCachePattern(`${at}x`)).toThrow(/longer than 256/);
  });

  it('applies the same rules to another namespace, and refuses a prefix that could act as a glob', () => {
    expect(parseCachePattern('*', 'tenant_b')).toBe('tenant_b:*');
    expect(parseCachePattern('tenant_b:x*', 'tenant_b')).toBe('tenant_b:x*');
    expect(() => parseCachePattern('ai_cache:*', 'tenant_b')).toThrow(AppError);
    expect(() => cachePatternSchema('a*')).toThrow(TypeError);
    expect(() => cachePatternSchema('a.b')).toThrow(TypeError);
  });
});

describe('JSON nesting depth', () => {
  const deep = (levels: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { a: v };
    return v;
  };

  it('measures objects and arrays alike, without recursion, whatever the depth', () => {
    expect(jsonDepthExceeds(1, 0)).toBe(false);
    expect(jsonDepthExceeds({}, 1)).toBe(false);
    expect(jsonDepthExceeds({ a: [] }, 1)).toBe(true);
    expect(jsonDepthExceeds(deep(32), 32)).toBe(false);
    expect(jsonDepthExceeds(deep(33), 32)).toBe(true);
    expect(jsonDepthExceeds(deep(1_000_000), 32)).toBe(true);
  });

  it('refuses a chat context deeper than the bound (a worker never walks it), and takes one at the bound', () => {
    const base = { user_id: 'u', message: 'hi' };
    expect(ChatRequestSchema.safeParse({ ...base, context: { a: deep(LIMITS.jsonMaxDepth - 2) } }).success).toBe(true);
    const refused = ChatRequestSchema.safeParse({ ...base, context: { a: deep(3_000) } });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.message).toMatch(/nests deeper than 31 levels/);
  });
});
