import type { AiMetrics, ChatRequest, Logger } from '@actionedx/shared';
import { cacheKey, type AnswerFlights, type FlightResult } from '../cache/index.js';
import type { ModelRouter, PriceTable } from '../llm/index.js';
import { sharingScope, type TaskProfile } from '../tasks/index.js';
import { ModelAnswers, type AnswerStream } from './model-answers.js';

export interface CachedAnswersDeps {
  router: ModelRouter;
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

  answer(req: ChatRequest, task: TaskProfile, stream: AnswerStream, signal: AbortSignal): Promise<FlightResult> {
    const compute = (onDelta: (delta: string) => void, s: AbortSignal, onReset: () => void) =>
      this.answers.answer(req, task, { onDelta, onReset }, s);
    if (!req.use_cache) return compute(stream.onDelta, signal, stream.onReset).then(({ entry }) => ({ entry, source: 'model' }));
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
    return this.deps.flights.getOrCompute(key, { ttlSeconds: task.ttlSeconds, onDelta: stream.onDelta, onReset: stream.onReset, signal, compute });
  }
}
