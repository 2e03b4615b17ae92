import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MODES, TASK_TYPES } from '@actionedx/shared';
import { cacheKey, canonicalJson, type CacheKeyParts } from './cache-key.js';

const KEY_FORMAT = new RegExp(`^ai_cache:(${TASK_TYPES.join('|')}):[0-9a-f]{64}$`);

// Binary units include lone surrogates, the case where a naive UTF-8 encoding collides.
const text = fc.string({ unit: 'binary', maxLength: 20 });
const context = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 });
const parts: fc.Arbitrary<CacheKeyParts> = fc.record({
  task_type: fc.constantFrom(...TASK_TYPES),
  mode: fc.constantFrom(...MODES),
  model: text,
  prompt_version: text,
  history: fc.array(fc.record({ role: fc.constantFrom('user' as const, 'assistant' as const), content: text }), {
    maxLength: 4,
  }),
  message: text,
  context,
  scope: fc.oneof(fc.constant('global' as const), text.map((id) => `user:${id}` as const)),
});

/** The same data with object keys in reverse order, at every depth. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).reverse()) {
      Object.defineProperty(out, k, { value: reverseKeys((value as Record<string, unknown>)[k]), enumerable: true });
    }
    return out;
  }
  return value;
}

/** JSON round trip: what reaches the model, with -0 and 0 alike. */
const asJson = (p: CacheKeyParts): unknown => JSON.parse(JSON.stringify(p));

const base: CacheKeyParts = {
  task_type: 'realtime_tutoring',
  mode: 'ally',
  model: 'gpt-4o-mini',
  prompt_version: '1',
  history: [],
  message: 'What is a derivative?',
  context: {},
  scope: 'global',
};

describe('cacheKey', () => {
  it('keeps the key of a request that asks for no sampling, and splits those that do', () => {
    expect(cacheKey({ ...base, sampling: undefined })).toBe(cacheKey(base));
    expect(cacheKey({ ...base, sampling: {} })).toBe(cacheKey(base));
    const capped = cacheKey({ ...base, sampling: { max_tokens: 50 } });
    expect(capped).not.toBe(cacheKey(base));
    expect(cacheKey({ ...base, sampling: { max_tokens: 50, temperature: 0 } })).not.toBe(capped);
    expect(cacheKey({ ...base, sampling: { temperature: 0, max_tokens: 50 } })).toBe(cacheKey({ ...base, sampling: { max_tokens: 50, temperature: 0 } }));
  });

  it('has the format <prefix>:<task_type>:<sha256 hex>', () => {
    fc.assert(
      fc.property(parts, (p) => {
        expect(cacheKey(p)).toMatch(KEY_FORMAT);
      }),
    );
    expect(cacheKey(base, 'ai_cache_test')).toMatch(/^ai_cache_test:realtime_tutoring:[0-9a-f]{64}$/);
  });

  it('is stable: same parts, same key, whatever the order of object keys', () => {
    fc.assert(
      fc.property(parts, (p) => {
        const shuffled = { ...p, context: reverseKeys(p.context) as Record<string, unknown> };
        expect(cacheKey(structuredClone(p))).toBe(cacheKey(p));
        expect(cacheKey(shuffled)).toBe(cacheKey(p));
      }),
    );
  });

  it('gives different keys to different parts', () => {
    fc.assert(
      fc.property(parts, parts, (a, b) => {
        fc.pre(!deepEqual(asJson(a), asJson(b)));
        expect(cacheKey(a)).not.toBe(cacheKey(b));
      }),
      { numRuns: 500 },
    );
  });

  it('does not collide when characters move across a field boundary', () => {
    fc.assert(
      fc.property(text, text, fc.string({ unit: 'binary', minLength: 1, maxLength: 10 }), (x, z, y) => {
        // model | prompt_version, prompt_version | message, and two history turns.
        expect(cacheKey({ ...base, model: x + y, prompt_version: z })).not.toBe(
          cacheKey({ ...base, model: x, prompt_version: y + z }),
        );
        expect(cacheKey({ ...base, prompt_version: x + y, message: z })).not.toBe(
          cacheKey({ ...base, prompt_version: x, message: y + z }),
        );
        const turn = (content: string) => ({ role: 'user' as const, content });
        expect(cacheKey({ ...base, history: [turn(x + y), turn(z)] })).not.toBe(
          cacheKey({ ...base, history: [turn(x), turn(y + z)] }),
        );
      }),
    );
  });

  it('separates the examples that matter', () => {
    const keys = [
      cacheKey(base),
      cacheKey({ ...base, context: { org: 'a' } }),
      cacheKey({ ...base, context: { org: 'b' } }),
      cacheKey({ ...base, context: { org: { name: 'a' } } }),
      cacheKey({ ...base, scope: 'user:alice' }),
      cacheKey({ ...base, scope: 'user:bob' }),
      cacheKey({ ...base, mode: 'oracle' }),
      cacheKey({ ...base, prompt_version: '2' }),
      cacheKey({ ...base, history: [{ role: 'user', content: 'hi' }] }),
      cacheKey({ ...base, history: [{ role: 'assistant', content: 'hi' }] }),
      cacheKey({ ...base, message: '\ud800' }),
      cacheKey({ ...base, message: '\udbff' }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('ignores what never reaches the model: extra members of a history turn', () => {
    const turn = { role: 'user' as const, content: 'hi' };
    expect(cacheKey({ ...base, history: [{ ...turn, at: 1 } as typeof turn] })).toBe(cacheKey({ ...base, history: [turn] }));
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every depth and follows JSON.stringify for the rest', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: undefined }, undefined], e: new Date(0) })).toBe(
      '{"a":[{"d":1},null],"b":1,"e":"1970-01-01T00:00:00.000Z"}',
    );
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(JSON.parse(canonicalJson(v))).toStrictEqual(JSON.parse(JSON.stringify(v)));
      }),
    );
  });
});

/** Structural equality ignoring key order, written independently of canonicalJson. */
function deepEqual(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return (
      ka.length === kb.length &&
      ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
    );
  }
  return Object.is(a, b);
}
