import { childTraceparent, currentContext, Headers, type AiMetrics, type ChatRequest, type Logger } from '@actionedx/shared';
import type { Computed } from '../cache/index.js';
import type { ModelClient, PriceTable } from '../llm/index.js';
import { buildPrompt, extractSuggestions, type TaskProfile } from '../tasks/index.js';
import { assessQuality } from './quality.js';

export interface ModelAnswersDeps {
  model: ModelClient;
  prices: PriceTable;
  metrics: Pick<AiMetrics, 'quality'>;
  logger: Logger;
}

/** One answer from the model: prompt, streamed call, suggestions, quality verdict and cost. */
export class ModelAnswers {
  constructor(private readonly deps: ModelAnswersDeps) {}

  /** Streams the answer into `onDelta`; `cacheable` says whether it passed the quality check. */
  async answer(req: ChatRequest, task: TaskProfile, onDelta: (d: string) => void, signal: AbortSignal): Promise<Computed> {
    const completion = await this.deps.model.complete({
      model: task.model,
      messages: buildPrompt(req, task),
      maxTokens: task.maxTokens,
      signal,
      onDelta,
      headers: traceHeaders(),
    });
    const suggestions = extractSuggestions(completion.text);
    const verdict = assessQuality(completion, suggestions);
    this.deps.metrics.quality.set({ model: task.model, task_type: task.taskType }, verdict.score);
    if (!verdict.passed) {
      this.deps.logger.warn({ reasons: verdict.reasons, score: verdict.score }, 'answer failed the quality check; not cached');
    }
    const entry = {
      v: 1 as const,
      response: completion.text,
      suggestions: suggestions.length > 0 ? suggestions : task.defaultSuggestions,
      model: completion.model,
      usage: completion.usage,
      cost_usd: this.deps.prices.cost({ answeredBy: completion.model, requested: task.model, usage: completion.usage }),
      created_at: Date.now(),
    };
    return { entry, cacheable: verdict.passed };
  }
}

/** The request id and a child span of the current trace, for the model call. */
function traceHeaders(): Record<string, string> {
  const ctx = currentContext();
  if (!ctx) return {};
  return { [Headers.requestId]: ctx.request_id, [Headers.traceparent]: childTraceparent(ctx.traceparent) };
}
