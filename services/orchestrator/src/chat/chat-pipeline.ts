import { AppError, toAppError, type AiMetrics, type ChatRequest, type Logger } from '@actionedx/shared';
import type { AnswerFlights, CacheEntry } from '../cache/index.js';
import type { ModelRouter, PriceTable } from '../llm/index.js';
import type { ConversationStore } from '../store/index.js';
import type { TaskRegistry } from '../tasks/index.js';
import { AnswerMetrics } from './answer-metrics.js';
import { CachedAnswers } from './cached-answers.js';
import type { FrameStream } from './frame-stream.js';
import type { AnswerStream } from './model-answers.js';
import { SessionHistory } from './session-history.js';

export interface ChatPipelineDeps {
  registry: TaskRegistry;
  /** The model targets of each task type, with fallback and hedging. */
  router: ModelRouter;
  prices: PriceTable;
  /** The cache's single flight: stored answers, or one shared computation for identical requests. */
  flights: AnswerFlights;
  /** Conversations and the usage ledger; a turn with a session and no history continues that session. */
  store: ConversationStore;
  metrics: AiMetrics;
  logger: Logger;
}

const ZERO_USAGE = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };

/** One chat request, from job to terminal frame: history → cache or model → done frame → metrics, log, ledger. */
export class ChatPipeline {
  /** Cache or model for one request: also what each step of a background job goes through. */
  readonly answers: CachedAnswers;
  private readonly history: SessionHistory;
  private readonly metrics: AnswerMetrics;

  constructor(private readonly deps: ChatPipelineDeps) {
    this.history = new SessionHistory(deps);
    this.answers = new CachedAnswers(deps);
    this.metrics = new AnswerMetrics(deps.metrics);
  }

  async run(request: ChatRequest, out: FrameStream, signal: AbortSignal, requestId: string): Promise<void> {
    const task = this.deps.registry.get(request.task_type);
    const clock = new TurnClock();
    const sink: AnswerStream = {
      onDelta: (delta) => {
        clock.firstChunk();
        out.write(delta);
      },
      onReset: () => out.reset(),
    };
    try {
      const req = await this.history.attachTo(request);
      const { entry, source } = await this.answers.answer(req, task, sink, signal);
      const cached = source !== 'model';
      const latencyMs = clock.elapsed();
      out.done({
        suggestions: entry.suggestions,
        model: entry.model,
        mode: req.mode,
        task_type: req.task_type,
        cached,
        usage: cached ? ZERO_USAGE : entry.usage,
        cost_usd: cached ? 0 : entry.cost_usd,
        ...(!cached && entry.usage_estimated ? { usage_estimated: true } : {}),
        latency_ms: round2(latencyMs),
        ...(clock.ttftMs === undefined ? {} : { ttft_ms: round2(clock.ttftMs) }),
      });
      // After the answer went out: neither metrics, the log line nor the ledger delay it.
      this.metrics.answered(task, entry, cached, latencyMs, clock.ttftMs);
      // Model calls are logged at info; cache hits, the cheap and frequent case, at debug.
      this.deps.logger[cached ? 'debug' : 'info'](
        { task_type: req.task_type, mode: req.mode, model: entry.model, cached, source, latency_ms: Math.round(latencyMs) },
        'chat answered',
      );
      this.remember(req, requestId, entry, cached, latencyMs);
    } catch (err) {
      const e = signal.aborted && signal.reason instanceof AppError ? signal.reason : toAppError(err);
      this.metrics.failed(task);
      if (e.code === 'internal') this.deps.logger.error({ err }, 'chat request failed');
      else this.deps.logger.warn({ code: e.code, msg_detail: e.message }, 'chat request ended with an error');
      out.error(e.code, e.message, e.retryable);
    }
  }

  /** Records the turn after the answer went out; the store never fails or delays an answer. */
  private remember(req: ChatRequest, requestId: string, entry: CacheEntry, cached: boolean, latencyMs: number): void {
    this.deps.store
      .appendTurn({
        request_id: requestId,
        ...(req.session_id ? { session_id: req.session_id } : {}),
        user_id: req.user_id,
        mode: req.mode,
        task_type: req.task_type,
        message: req.message,
        response: entry.response,
        model: entry.model,
        cached,
        usage: cached ? ZERO_USAGE : entry.usage,
        cost_usd: cached ? 0 : entry.cost_usd,
        ...(!cached && entry.usage_estimated ? { usage_estimated: true } : {}),
        latency_ms: latencyMs,
        created_at: new Date(),
      })
      .catch((err: unknown) => this.deps.logger.warn({ err }, 'could not store the conversation turn'));
  }
}

/** Time since the turn started, and to its first chunk. */
class TurnClock {
  private readonly started = performance.now();
  ttftMs: number | undefined;

  firstChunk(): void {
    this.ttftMs ??= performance.now() - this.started;
  }

  elapsed(): number {
    return performance.now() - this.started;
  }
}

const round2 = (ms: number): number => Math.round(ms * 100) / 100;
