import type { AiMetrics, ChatRequest, Logger } from '@actionedx/shared';
import { cacheKey, type AnswerFlights, type FlightResult } from '../cache/index.js';
import type { ModelClient, PriceTable } from '../llm/index.js';
import { sharingScope, type TaskProfile } from '../tasks/index.js';
import { ModelAnswers } from './model-answers.js';

export interface CachedAnswersDeps {
  model: ModelClient;
  prices: PriceTable;
  /** The cache's single flight: stored answers, or one shared computation for identical requests. */
  flights: AnswerFlights;
  metrics: Pick<AiMetrics, 'quality'>;
  logger: Logger;
}

/**
 * One request's answer, whoever asks (a chat turn, a step of a background job): from the cache, or a computation
 * shared with identical requests on any replica, or straight from the model when the request bypasses the cache.
 */
export class CachedAnswers {
  private readonly answers: ModelAnswers;

  constructor(private readonly deps: CachedAnswersDeps) {
    this.answers = new ModelAnswers(deps);
  }

  answer(req: ChatRequest, task: TaskProfile, onDelta: (d: string) => void, signal: AbortSignal): Promise<FlightResult> {
    const compute = (d: (delta: string) => void, s: AbortSignal) => this.answers.answer(req, task, d, s);
    if (!req.use_cache) return compute(onDelta, signal).then(({ entry }) => ({ entry, source: 'model' }));
    const key = cacheKey(
      {
        task_type: req.task_type,
        mode: req.mode,
        model: task.model,
        prompt_version: String(task.promptVersion),
        history: req.history,
        message: req.message,
        context: req.context,
        scope: sharingScope(task.sharing, req.user_id),
      },
      this.deps.flights.prefix,
    );
    return this.deps.flights.getOrCompute(key, { ttlSeconds: task.ttlSeconds, onDelta, signal, compute });
  }
}
