import { describe, expect, it } from 'vitest';
import { LruStore } from './lru-store.js';

function store(limits: { maxEntries: number; maxBytes: number }) {
  let now = 0;
  return { s: new LruStore(limits, () => now), advance: (ms: number) => void (now += ms) };
}

describe('LruStore', () => {
  it('evicts the least recently used beyond the entry bound', () => {
    const { s } = store({ maxEntries: 2, maxBytes: 1_000 });
    s.set('a', '1', 1_000);
    s.set('b', '2', 1_000);
    expect(s.get('a')).toBe('1');
    s.set('c', '3', 1_000);
    expect(s.keys()).toEqual(['a', 'c']);
  });

  it('evicts beyond the byte bound and refuses a value larger than the whole store', () => {
    const { s } = store({ maxEntries: 100, maxBytes: 10 });
    s.set('a', 'xxxx', 1_000);
    s.set('b', 'yyyy', 1_000);
    expect(s.bytes).toBe(10);
    s.set('c', 'z', 1_000);
    expect(s.keys()).toEqual(['b', 'c']);
    expect(s.bytes).toBe(7);
    expect(s.set('d', 'x'.repeat(10), 1_000)).toBe(false);
    expect(s.keys()).toEqual(['b', 'c']);
  });

  it('forgets expired values and their bytes', () => {
    const { s, advance } = store({ maxEntries: 10, maxBytes: 1_000 });
    s.set('a', '1', 100);
    s.set('b', '2', 200);
    advance(100);
    expect(s.get('a')).toBeUndefined();
    expect(s.keys()).toEqual(['b']);
    advance(100);
    expect(s.keys()).toEqual([]);
    expect(s.bytes).toBe(0);
  });

  it('replaces a value in place of the old one', () => {
    const { s } = store({ maxEntries: 10, maxBytes: 1_000 });
    s.set('a', '1', 100);
    s.set('a', '22', 100);
    expect(s.get('a')).toBe('22');
    expect(s.bytes).toBe(3);
    expect(s.delete('a')).toBe(true);
    expect(s.bytes).toBe(0);
  });
});
