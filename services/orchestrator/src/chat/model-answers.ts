import { childTraceparent, currentContext, Headers, type AiMetrics, type ChatRequest, type Logger } from '@actionedx/shared';
import type { Computed } from '../cache/index.js';
import type { Completion, ModelRouter, PriceTable } from '../llm/index.js';
import { buildPrompt, effectiveMaxTokens, extractSuggestions, type TaskProfile } from '../tasks/index.js';
import { assessQuality } from './quality.js';

export interface ModelAnswersDeps {
  router: ModelRouter;
  prices: PriceTable;
  metrics: Pick<AiMetrics, 'quality'>;
  logger: Logger;
}

/** Where an answer streams: its pieces, and a reset when a model failed mid-answer and another one answers. */
export interface AnswerStream {
  onDelta: (delta: string) => void;
  onReset: () => void;
}

/** One answer from the task's model targets: prompt, routed streamed call, suggestions, quality verdict and cost. */
export class ModelAnswers {
  constructor(private readonly deps: ModelAnswersDeps) {}

  /** Streams the answer into `stream`; `cacheable` says whether it passed the quality check. */
  async answer(req: ChatRequest, task: TaskProfile, stream: AnswerStream, signal: AbortSignal): Promise<Computed> {
    const completion = await this.deps.router.complete({
      taskType: task.taskType,
      messages: buildPrompt(req, task),
      maxTokens: effectiveMaxTokens(req, task),
      ...(req.temperature === undefined ? {} : { temperature: req.temperature }),
      signal,
      onDelta: stream.onDelta,
      onReset: stream.onReset,
      // An answer below the bar gets one more try on the next target (the router bounds it).
      accept: (c) => assessQuality(c, extractSuggestions(c.text)).passed,
      headers: traceHeaders(),
    });
    const suggestions = extractSuggestions(completion.text);
    const verdict = assessQuality(completion, suggestions);
    this.deps.metrics.quality.set({ model: completion.requestedModel, task_type: task.taskType }, verdict.score);
    if (!verdict.passed) {
      this.deps.logger.warn({ reasons: verdict.reasons, score: verdict.score, target: completion.target }, 'answer failed the quality check; not cached');
    }
    const entry = {
      v: 1 as const,
      response: completion.text,
      suggestions: suggestions.length > 0 ? suggestions : task.defaultSuggestions,
      model: completion.model,
      usage: completion.usage,
      cost_usd: this.cost(completion),
      ...(completion.usageEstimated ? { usage_estimated: true } : {}),
      created_at: Date.now(),
    };
    return { entry, cacheable: verdict.passed };
  }

  private cost(c: Completion): number {
    return this.deps.prices.cost({ answeredBy: c.model, requested: c.requestedModel, usage: c.usage });
  }
}

/** The request id and a child span of the current trace, for the model call. */
function traceHeaders(): Record<string, string> {
  const ctx = currentContext();
  if (!ctx) return {};
  return { [Headers.requestId]: ctx.request_id, [Headers.traceparent]: childTraceparent(ctx.traceparent) };
}
