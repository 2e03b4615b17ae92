import { describe, expect, it } from 'vitest';
import { generateAnswer, tokenize } from './text.js';

const user = (content: string) => [{ role: 'user' as const, content }];

describe('generateAnswer', () => {
  it('gives the same text for the same model and messages', () => {
    const a = generateAnswer('gpt-4o', user('How do I align my rubric?'), { words: 30, suggestions: false });
    const b = generateAnswer('gpt-4o', user('How do I align my rubric?'), { words: 30, suggestions: false });
    expect(a).toBe(b);
  });

  it('gives different text for a different prompt or model', () => {
    const base = generateAnswer('gpt-4o', user('one'), { words: 30, suggestions: false });
    expect(generateAnswer('gpt-4o', user('two'), { words: 30, suggestions: false })).not.toBe(base);
    expect(generateAnswer('mock-1', user('one'), { words: 30, suggestions: false })).not.toBe(base);
  });

  it('has exactly `words` tokens that join back into the text', () => {
    const text = generateAnswer('gpt-4o', user('hi'), { words: 17, suggestions: false });
    const tokens = tokenize(text);
    expect(tokens).toHaveLength(17);
    expect(tokens.join('')).toBe(text);
    expect(text).toMatch(/^[A-Z].*\.$/s);
  });

  it('appends 2 or 3 suggestion lines, the same whatever the answer length', () => {
    const tail = (words: number) =>
      generateAnswer('gpt-4o', user('hi'), { words, suggestions: true }).split('\n\nSuggestions:\n')[1];
    const lines = tail(10)?.split('\n') ?? [];
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.length).toBeLessThanOrEqual(3);
    for (const line of lines) expect(line).toMatch(/^- \S+ \S+ \S+$/);
    expect(tail(40)).toBe(tail(10));
  });

  it('returns no text for zero words', () => {
    expect(generateAnswer('gpt-4o', user('hi'), { words: 0, suggestions: false })).toBe('');
    expect(tokenize('')).toEqual([]);
  });
});
