import type { AiMetrics, ChatRequest, Logger } from '@actionedx/shared';
import { cacheKey, type AnswerFlights, type FlightResult } from '../cache/index.js';
import type { ModelRouter, PriceTable } from '../llm/index.js';
import { samplingOf, sharingScope, type TaskProfile } from '../tasks/index.js';
import { ModelAnswers, type AnswerStream } from './model-answers.js';

export interface CachedAnswersDeps {
  router: ModelRouter;
  prices: PriceTable;
  /** The cache's single flight: stored answers, or one shared computation for identical requests. */
  flights: AnswerFlights;
  metrics: Pick<AiMetrics, 'quality'>;
  logger: Logger;
}

export interface AnswerOptions {
  /** The request's cache key when the caller has it already (`keyOf`). */
  key?: string | undefined;
  /** The caller has just looked the key up and missed: the flight starts at the lock. */
  skipLookup?: boolean;
  /** The flight lock reserved for this request when it was queued (`AnswerFlights.reserve`): taken over. */
  flightToken?: string | undefined;
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

  /** The cache key of a request; undefined when it bypasses the cache (`use_cache: false`). */
  keyOf(req: ChatRequest, task: TaskProfile): string | undefined {
    if (!req.use_cache) return undefined;
    return cacheKey(
      {
        task_type: req.task_type,
        mode: req.mode,
        model: task.model,
        prompt_version: String(task.promptVersion),
        history: req.history,
        message: req.message,
        context: req.context,
        scope: sharingScope(task.sharing, req.user_id),
        sampling: samplingOf(req, task),
      },
      this.deps.flights.prefix,
    );
  }

  answer(req: ChatRequest, task: TaskProfile, stream: AnswerStream, signal: AbortSignal, opts: AnswerOptions = {}): Promise<FlightResult> {
    const compute = (onDelta: (delta: string) => void, s: AbortSignal, onReset: () => void) =>
      this.answers.answer(req, task, { onDelta, onReset }, s);
    const key = opts.key ?? this.keyOf(req, task);
    if (key === undefined) return compute(stream.onDelta, signal, stream.onReset).then(({ entry }) => ({ entry, source: 'model' }));
    return this.deps.flights.getOrCompute(key, {
      ttlSeconds: task.ttlSeconds,
      onDelta: stream.onDelta,
      onReset: stream.onReset,
      signal,
      compute,
      skipLookup: opts.skipLookup === true,
      reservation: opts.flightToken,
    });
  }

  /**
   * The answer without a model call of one's own: the stored one, or a computation of the same key that runs
   * now (followed). Undefined when neither exists: the request needs the model.
   */
  async stored(key: string, stream: AnswerStream, signal: AbortSignal): Promise<FlightResult | undefined> {
    const found = await this.deps.flights.lookup(key);
    if (found.entry) {
      stream.onDelta(found.entry.response);
      return { entry: found.entry, source: 'cache' };
    }
    if (!found.computing) return undefined;
    return this.follow(key, stream, signal);
  }

  /**
   * The answer of the computation of `key` that an identical request holds the lock of (here or on another replica):
   * followed, then read from the store. Undefined when it ends without a stored answer.
   */
  follow(key: string, stream: AnswerStream, signal: AbortSignal): Promise<FlightResult | undefined> {
    return this.deps.flights.follow(key, { onDelta: stream.onDelta, onReset: stream.onReset, signal });
  }
}
