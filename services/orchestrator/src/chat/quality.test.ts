import { describe, expect, it } from 'vitest';
import { assessQuality } from './quality.js';

const usage = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 };
const completion = (text: string, finishReason = 'stop') => ({ text, finishReason, usage, model: 'm' });

describe('assessQuality', () => {
  it('passes a finished answer of reasonable length', () => {
    const v = assessQuality(completion('A clear, complete answer with some substance to it.'), ['next']);
    expect(v).toEqual({ score: 1, passed: true, reasons: [] });
  });

  it('fails an answer cut short by the token limit', () => {
    const v = assessQuality(completion('A clear, complete answer with some substance', 'length'), ['x']);
    expect(v.passed).toBe(false);
    expect(v.reasons).toContain('finish_reason length');
  });

  it('fails a near-empty answer', () => {
    expect(assessQuality(completion('ok'), ['x']).passed).toBe(false);
  });

  it('scores repetition down', () => {
    const v = assessQuality(completion('same '.repeat(40)), ['x']);
    expect(v.reasons).toContain('repetitive');
    expect(v.score).toBeLessThan(1);
  });
});
