import type { ChatRequest } from '@actionedx/shared';
import type { TaskProfile } from './task-registry.js';

/** The generated-token cap of a request: its own `max_tokens` when lower than the task type's, else the task's. */
export const effectiveMaxTokens = (req: ChatRequest, task: TaskProfile): number => Math.min(req.max_tokens ?? task.maxTokens, task.maxTokens);

/**
 * What a request asks of the model beyond its task type's defaults, for the cache key: a lower token cap, a
 * temperature. Undefined when nothing, so such requests share answers with requests that never asked.
 */
export function samplingOf(req: ChatRequest, task: TaskProfile): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  const maxTokens = effectiveMaxTokens(req, task);
  if (maxTokens < task.maxTokens) out.max_tokens = maxTokens;
  if (req.temperature !== undefined) out.temperature = req.temperature;
  return Object.keys(out).length > 0 ? out : undefined;
}
