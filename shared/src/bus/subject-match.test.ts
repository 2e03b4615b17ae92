import { describe, expect, it } from 'vitest';
import { subjectMatches } from './subject-match.js';

describe('subjectMatches', () => {
  it.each([
    ['a.b', 'a.b', true],
    ['a.*', 'a.b', true],
    ['a.*', 'a.b.c', false],
    ['a.>', 'a.b.c', true],
    ['a.>', 'a', false],
    ['*.b', 'a.b', true],
    ['a.b', 'a.c', false],
    ['a.b.c', 'a.b', false],
    ['a.>.c', 'a.b.c', false],
  ])('%s ~ %s → %s', (p, s, want) => {
    expect(subjectMatches(p, s)).toBe(want);
  });
});
