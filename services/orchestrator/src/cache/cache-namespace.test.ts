import { describe, expect, it } from 'vitest';
import { AppError } from '@actionedx/shared';
import { CacheNamespace } from './cache-namespace.js';

const hash = 'a'.repeat(64);
const ns = new CacheNamespace('ai_cache');

function refusal(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError ? err.code : 'not an AppError';
  }
  return undefined;
}

describe('CacheNamespace', () => {
  it('lays out answers, counters, locks and channels', () => {
    const key = `ai_cache:strategy_audit:${hash}`;
    expect(ns.taskTypeOf(key)).toBe('strategy_audit');
    expect(ns.lockKey(key)).toBe(`ai_cache:lock:strategy_audit:${hash}`);
    expect(ns.flightChannel(key)).toBe(`ai_cache:flight:strategy_audit:${hash}`);
    expect(ns.keyOfFlightChannel(ns.flightChannel(key))).toBe(key);
    expect(ns.statsKey).toBe('ai_cache:stats');
  });

  it('tells answers from everything else', () => {
    for (const other of ['ai_cache:stats', `ai_cache:lock:strategy_audit:${hash}`, `other:strategy_audit:${hash}`, 'ai_cache:x:y']) {
      expect(ns.taskTypeOf(other)).toBeUndefined();
      expect(() => ns.assertAnswerKey(other)).toThrow(TypeError);
    }
    expect(ns.keyOfFlightChannel(`other:flight:strategy_audit:${hash}`)).toBeUndefined();
  });

  it('refuses a prefix that could act as a glob', () => {
    expect(() => new CacheNamespace('ai*')).toThrow(TypeError);
    expect(() => new CacheNamespace('a:b')).toThrow(TypeError);
  });

  it('accepts patterns inside the namespace and matches only answer keys', () => {
    const target = ns.invalidationTarget({ pattern: 'ai_cache:*' });
    expect(target.pattern).toBe('ai_cache:*');
    expect(target.matches(`ai_cache:collaboration:${hash}`)).toBe(true);
    expect(target.matches('ai_cache:stats')).toBe(false);
    expect(target.matches(`ai_cache:lock:collaboration:${hash}`)).toBe(false);
    const one = ns.invalidationTarget({ pattern: 'ai_cache:collaboration:a?a*' });
    expect(one.matches(`ai_cache:collaboration:${hash}`)).toBe(true);
    expect(one.matches(`ai_cache:collaboration:b${hash.slice(1)}`)).toBe(false);
  });

  it('turns a task type into a pattern, and intersects it with a pattern', () => {
    expect(ns.invalidationTarget({ task_type: 'collaboration' }).pattern).toBe('ai_cache:collaboration:*');
    const both = ns.invalidationTarget({ pattern: 'ai_cache:*', task_type: 'collaboration' });
    expect(both.matches(`ai_cache:collaboration:${hash}`)).toBe(true);
    expect(both.matches(`ai_cache:strategy_audit:${hash}`)).toBe(false);
  });

  it('refuses patterns outside the namespace or with classes, escapes or other characters', () => {
    for (const pattern of [
      '*',
      'ai_cache',
      'ai_cache_other:*',
      'other:ai_cache:*',
      'ai_cache:[a-z]*',
      'ai_cache:\\*',
      'ai_cache:* ',
      'ai_cache:é',
      `ai_cache:${'x'.repeat(248)}`,
    ]) {
      expect(refusal(() => ns.invalidationTarget({ pattern })), pattern).toBe('invalid_pattern');
    }
    expect(refusal(() => ns.invalidationTarget({}))).toBe('validation_failed');
    expect(refusal(() => ns.invalidationTarget({ task_type: 'nope' as 'collaboration' }))).toBe('unknown_task_type');
  });
});
