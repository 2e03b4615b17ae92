import { messageText, type ChatMessage } from './chat-request.js';

const VOCABULARY = [
  'learning', 'outcomes', 'curriculum', 'assessment', 'feedback', 'strategy', 'students', 'teachers',
  'alignment', 'framework', 'evidence', 'progress', 'goals', 'engagement', 'rubric', 'mastery',
  'collaboration', 'reflection', 'inquiry', 'scaffolding', 'differentiation', 'pedagogy', 'milestones', 'data',
  'equity', 'inclusion', 'planning', 'review', 'priorities', 'capacity', 'coaching', 'practice',
  'standards', 'competencies', 'pathways', 'mentoring', 'literacy', 'numeracy', 'wellbeing', 'leadership',
  'improvement', 'impact', 'measures', 'cohort', 'projects', 'portfolio', 'objectives', 'resources',
  'sequencing', 'formative', 'summative', 'benchmarks', 'interventions', 'routines', 'community', 'vision',
  'stakeholders', 'iteration', 'insight', 'growth', 'clarity', 'focus', 'support', 'reporting',
];
const SUGGESTION_VERBS = ['Align', 'Map', 'Pilot', 'Review', 'Share', 'Measure', 'Prioritise', 'Draft'];

/** FNV-1a: a stable 32-bit hash, so the same prompt seeds the same text in every process. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** mulberry32: tiny, fast and good enough to pick words. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const pick = <T>(items: readonly T[], random: () => number): T => items[Math.floor(random() * items.length)] as T;
const capitalise = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);

/** `words` words of prose in sentences of 6 to 12 words. */
function prose(words: number, random: () => number): string {
  let text = '';
  let sentenceLeft = 0;
  for (let i = 0; i < words; i++) {
    const starts = sentenceLeft === 0;
    if (starts) sentenceLeft = 6 + Math.floor(random() * 7);
    const word = pick(VOCABULARY, random);
    sentenceLeft--;
    const ends = sentenceLeft === 0 || i === words - 1;
    text += `${i > 0 ? ' ' : ''}${starts ? capitalise(word) : word}${ends ? '.' : ''}`;
  }
  return text;
}

function suggestions(random: () => number): string {
  const count = 2 + Math.floor(random() * 2);
  const lines = Array.from(
    { length: count },
    () => `- ${pick(SUGGESTION_VERBS, random)} ${pick(VOCABULARY, random)} ${pick(VOCABULARY, random)}`,
  );
  return `Suggestions:\n${lines.join('\n')}`;
}

export interface AnswerOptions {
  /** Words of prose. */
  words: number;
  /** Append a `Suggestions:` block of 2–3 `- ...` lines. */
  suggestions: boolean;
}

/** The answer to a prompt: the same model and messages always give the same text, different ones differ. */
export function generateAnswer(model: string, messages: ChatMessage[], opts: AnswerOptions): string {
  const seed = hash(`${model}\n${messages.map((m) => `${m.role}:${messageText(m)}`).join('\n')}`);
  const body = prose(opts.words, prng(seed));
  if (!opts.suggestions) return body;
  // A second stream for the suggestions keeps them the same whatever the answer length.
  const block = suggestions(prng(seed ^ 0x9e3779b9));
  return body ? `${body}\n\n${block}` : block;
}

/** Tokens as the mock counts them: a word with the whitespace after it, so they join back into the text. */
export const tokenize = (text: string): string[] => text.match(/\S+\s*/g) ?? [];
