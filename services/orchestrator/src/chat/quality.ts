import type { Completion } from '../llm/index.js';

export interface QualityVerdict {
  /** 0 to 1; exported as `ai_response_quality_score`. */
  score: number;
  /** Only answers that pass are cached. */
  passed: boolean;
  reasons: string[];
}

const MIN_CHARS = 20;

/** Cheap structural checks: an answer that is cut short, near-empty or repetitive is never cached. */
export function assessQuality(c: Completion, suggestions: string[]): QualityVerdict {
  const reasons: string[] = [];
  let score = 1;
  const text = c.text.trim();
  if (c.finishReason !== 'stop') {
    reasons.push(`finish_reason ${c.finishReason}`);
    score -= 0.5;
  }
  if (text.length < MIN_CHARS) {
    reasons.push('too short');
    score -= 0.5;
  }
  const words = text.split(/\s+/);
  if (words.length >= 20 && new Set(words).size / words.length < 0.2) {
    reasons.push('repetitive');
    score -= 0.4;
  }
  if (suggestions.length === 0) {
    reasons.push('no suggestions');
    score -= 0.1;
  }
  score = Math.max(0, Math.round(score * 100) / 100);
  const passed = c.finishReason === 'stop' && text.length >= MIN_CHARS && score >= 0.5;
  return { score, passed, reasons };
}
