import { AppError, toAppError, type AiMetrics, type ChatRequest, type Logger } from '@actionedx/shared';
import type { AnswerFlights, CacheEntry, FlightReservation, FlightResult } from '../cache/index.js';
import type { ModelRouter, PriceTable } from '../llm/index.js';
import type { ConversationStore } from '../store/index.js';
import type { TaskProfile, TaskRegistry } from '../tasks/index.js';
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

/** A request made ready for either lane: its history attached, its task, its cache key (none: no cache). */
export interface PreparedTurn {
  req: ChatRequest;
  task: TaskProfile;
  key: string | undefined;
}

/**
 * One chat request, from job to terminal frame: history → cache or model → done frame → metrics, log, ledger.
 * Split for the two lanes: `prepare` + `answerStored` (no model call of its own) and `run` (the model lane).
 */
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

  /**
   * What every lane needs first: the session's history attached, the task, and the cache key (none when the
   * request bypasses the cache). Never throws: a store that fails leaves the request without history.
   */
  async prepare(request: ChatRequest): Promise<PreparedTurn> {
    const req = await this.history.attachTo(request);
    const task = this.deps.registry.get(req.task_type);
    return { req, task, key: this.answers.keyOf(req, task) };
  }

  /** A request whose history the lookup lane already attached (a queued job): no store read. */
  prepared(req: ChatRequest): PreparedTurn {
    const task = this.deps.registry.get(req.task_type);
    return { req, task, key: this.answers.keyOf(req, task) };
  }

  /**
   * The lookup lane: answers from the cache when it can without a model call of its own, a stored answer or
   * a computation of the same key that runs now (followed without a slot). True when the turn ended here
   * (answered, or failed with an error frame); false when it needs the model lane.
   */
  answerStored(turn: PreparedTurn, out: FrameStream, signal: AbortSignal, requestId: string): Promise<boolean> {
    return this.answerByKey(turn, out, signal, requestId, (key, stream) => this.answers.stored(key, stream, signal));
  }

  /**
   * The lookup lane, when an identical miss reserved the key between its lookup and its own reservation: follows
   * that one (no second lookup). False when it ended without an answer (queue this one).
   */
  followReserved(turn: PreparedTurn, out: FrameStream, signal: AbortSignal, requestId: string): Promise<boolean> {
    return this.answerByKey(turn, out, signal, requestId, (key, stream) => this.answers.follow(key, stream, signal));
  }

  /**
   * The lookup lane, before it queues a miss: holds the turn's flight lock until a model slot adopts it, so that
   * identical misses follow this one instead of queueing (`AnswerFlights.reserve`). Undefined without a cache key.
   */
  async reserve(turn: PreparedTurn): Promise<FlightReservation | 'busy' | 'unavailable' | undefined> {
    return turn.key === undefined ? undefined : this.deps.flights.reserve(turn.key);
  }

  /** Gives up the reservation of a queued turn that will not run (dropped, cancelled, past its deadline). */
  async releaseReservation(turn: PreparedTurn, token: string): Promise<void> {
    if (turn.key !== undefined) await this.deps.flights.releaseReservation(turn.key, token);
  }

  /**
   * The model lane (and the whole turn where there is no queue): cache or single flight, else the model.
   * `lookedUp`: the lookup lane already missed on this key, so the flight starts at the lock; `flightToken`: the
   * lock it reserved, which the flight takes over.
   */
  async run(
    request: ChatRequest | PreparedTurn,
    out: FrameStream,
    signal: AbortSignal,
    requestId: string,
    opts: { lookedUp?: boolean; flightToken?: string | undefined } = {},
  ): Promise<void> {
    const turn = 'task' in request ? request : await this.prepare(request);
    await this.respond(turn, out, signal, requestId, (stream) =>
      this.answers.answer(turn.req, turn.task, stream, signal, { key: turn.key, skipLookup: opts.lookedUp === true, flightToken: opts.flightToken }),
    );
  }

  /** A lookup-lane answer that needs the turn's cache key (none: false, the turn needs the model lane). */
  private async answerByKey(
    turn: PreparedTurn,
    out: FrameStream,
    signal: AbortSignal,
    requestId: string,
    source: (key: string, stream: AnswerStream) => Promise<FlightResult | undefined>,
  ): Promise<boolean> {
    const key = turn.key;
    if (key === undefined) return false;
    return this.respond(turn, out, signal, requestId, (stream) => source(key, stream));
  }

  /** One turn from an answer source to its terminal frame, metrics, log line and ledger entry. */
  private async respond(
    turn: PreparedTurn,
    out: FrameStream,
    signal: AbortSignal,
    requestId: string,
    source: (stream: AnswerStream) => Promise<FlightResult | undefined>,
  ): Promise<boolean> {
    const { req, task } = turn;
    const clock = new TurnClock();
    const stream: AnswerStream = {
      onDelta: (delta) => {
        clock.firstChunk();
        out.write(delta);
      },
      onReset: () => out.reset(),
    };
    try {
      const result = await source(stream);
      if (result === undefined) return false;
      const { entry } = result;
      const cached = result.source !== 'model';
      const latencyMs = clock.elapsed();
      out.done({
        suggestions: entry.suggestions,
        model: entry.model,
        mode: req.mode,
        task_type: req.task_type,
        cached,
        source: result.source,
        usage: cached ? ZERO_USAGE : entry.usage,
        cost_usd: cached ? 0 : entry.cost_usd,
        latency_ms: round2(latencyMs),
        ...(clock.ttftMs === undefined ? {} : { ttft_ms: round2(clock.ttftMs) }),
      });
      // After the answer went out: the terminal frame is written to the bus in this turn's microtasks, so metrics,
      // the log line and the ledger wait for the next turn instead of delaying it (the async context goes along).
      const ttftMs = clock.ttftMs;
      setImmediate(() => {
        try {
          this.metrics.answered(task, entry, cached, latencyMs, ttftMs);
          // Model calls are logged at info; cache hits, the cheap and frequent case, at debug.
          this.deps.logger[cached ? 'debug' : 'info'](
            { task_type: req.task_type, mode: req.mode, model: entry.model, cached, source: result.source, latency_ms: Math.round(latencyMs) },
            'chat answered',
          );
          this.remember(req, requestId, entry, cached, latencyMs);
        } catch (err) {
          this.deps.logger.error({ err }, 'could not record an answered turn');
        }
      });
    } catch (err) {
      const e = signal.aborted && signal.reason instanceof AppError ? signal.reason : toAppError(err);
      this.metrics.failed(task);
      if (e.code === 'internal') this.deps.logger.error({ err }, 'chat request failed');
      else this.deps.logger.warn({ code: e.code, msg_detail: e.message }, 'chat request ended with an error');
      out.error(e.code, e.message, e.retryable);
    }
    return true;
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
