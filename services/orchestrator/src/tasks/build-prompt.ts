import type { ChatRequest } from '@actionedx/shared';
import { MODE_PERSONAS, type TaskProfile } from './task-registry.js';

export interface PromptMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** The marker the model is asked to put before its follow-up suggestions; `extractSuggestions` reads it. */
export const SUGGESTIONS_MARKER = 'Suggestions:';

/** Build the messages for the model from the mode's persona, the task's instructions, history and context. */
export function buildPrompt(req: ChatRequest, task: TaskProfile): PromptMessage[] {
  const system = [
    MODE_PERSONAS[req.mode],
    task.instructions,
    `End your answer with a line "${SUGGESTIONS_MARKER}" followed by two or three short follow-up prompts, one per line, each starting with "- ".`,
  ];
  const contextKeys = Object.keys(req.context);
  if (contextKeys.length > 0) {
    // Sorted so that the same context always yields the same prompt (and the same cache key upstream).
    const ordered = Object.fromEntries(contextKeys.sort().map((k) => [k, req.context[k]]));
    system.push(`Learner context (JSON): ${JSON.stringify(ordered)}`);
  }
  return [
    { role: 'system', content: system.join('\n\n') },
    ...req.history.map((t) => ({ role: t.role, content: t.content })),
    { role: 'user', content: req.message },
  ];
}

/** The follow-up suggestions the model listed after the marker at the end of its answer. */
export function extractSuggestions(answer: string): string[] {
  const at = answer.lastIndexOf(SUGGESTIONS_MARKER);
  if (at < 0) return [];
  return answer
    .slice(at + SUGGESTIONS_MARKER.length)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('- ') && l.length > 2)
    .map((l) => l.slice(2).trim())
    .slice(0, 5);
}
