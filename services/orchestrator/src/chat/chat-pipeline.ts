import {
  AppError,
  childTraceparent,
  currentContext,
  Headers,
  type AiMetrics,
  type ChatRequest,
  type Logger,
  type TaskType,
} from '@actionedx/shared';
import { cacheKey, sharingScopeFor, type CacheEntry, type ResponseCache, type Sharing } from '../cache/index.js';
import { costUsd, UpstreamError, type ModelClient } from '../llm/index.js';
import { buildPrompt, extractSuggestions, type TaskProfile, type TaskRegistry } from '../tasks/index.js';
import type { ConversationStore } from '../store/index.js';
import type { FrameStream } from './frame-stream.js';
import { LocalFlight, type FlightAnswer } from './local-flight.js';
import { assessQuality } from './quality.js';

export interface ChatPipelineOptions {
  /** Lease of the single-flight lock, renewed every third of it while the model answers. Default 15 s. */
  flightLeaseMs?: number;
  /** How long a request waits for another replica's answer before calling the model itself. Default 120 s. */
  flightWaitMs?: number;
}

export interface ChatPipelineDeps {
  registry: TaskRegistry;
  model: ModelClient;
  cache: ResponseCache;
  /** Conversations and the usage ledger; a turn with a session and no history continues that session. */
  store: ConversationStore;
  metrics: AiMetrics;
  logger: Logger;
  /** Who shares a cached answer, per task type (default: the cache's `DEFAULT_SHARING`). */
  sharing?: Partial<Record<TaskType, Sharing>>;
  options?: ChatPipelineOptions;
}

const ZERO_USAGE = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
/** The metric series one kind of answer (model, task type, cached or not) moves. */
interface AnswerSeries {
  requests: { inc(): void };
  latency: { observe(v: number): void };
  ttft: { observe(v: number): void };
  promptTokens: { inc(v: number): void };
  completionTokens: { inc(v: number): void };
  cost: { inc(v: number): void };
}

/** Earlier turns of a session sent to the model with a new message. */
const SESSION_HISTORY_TURNS = 10;
/** Rounds of "someone else is answering" before a request calls the model itself. */
const MAX_FLIGHT_ROUNDS = 3;

/**
 * One chat request, from job to terminal frame: cache → single flight → model → quality → store.
 * Identical requests running at once share one model call, in this process and across replicas.
 */
export class ChatPipeline {
  private readonly flights = new Map<string, LocalFlight>();
  private readonly series = new Map<string, AnswerSeries>();
  private readonly leaseMs: number;
  private readonly waitMs: number;

  constructor(private readonly deps: ChatPipelineDeps) {
    this.leaseMs = deps.options?.flightLeaseMs ?? 15_000;
    this.waitMs = deps.options?.flightWaitMs ?? 120_000;
  }

  async run(request: ChatRequest, out: FrameStream, signal: AbortSignal, requestId = ''): Promise<void> {
    const started = performance.now();
    const task = this.deps.registry.get(request.task_type);
    let firstChunkAt: number | undefined;
    const write = (delta: string) => {
      firstChunkAt ??= performance.now();
      out.write(delta);
    };
    try {
      const req = await this.withSessionHistory(request);
      let answer: FlightAnswer;
      if (!req.use_cache) {
        answer = (await this.generate(req, task, write, signal)).answer;
      } else {
        const key = this.keyFor(req, task);
        const hit = await this.deps.cache.lookup(key);
        if (hit) answer = this.replay(hit, write);
        else {
          const joined = this.flights.get(key);
          const flight = joined ?? this.startFlight(key, req, task);
          const detach = flight.follow(write, signal);
          try {
            answer = await raceAbort(flight.result, signal);
          } finally {
            detach();
          }
          // Only the request that started the flight paid for the model call.
          if (joined) answer = { ...answer, fromCache: true };
        }
      }
      const ended = performance.now();
      this.record(task, answer, ended - started, firstChunkAt === undefined ? undefined : firstChunkAt - started);
      out.done({
        suggestions: answer.suggestions,
        model: answer.model,
        mode: req.mode,
        task_type: req.task_type,
        cached: answer.fromCache,
        usage: answer.fromCache ? ZERO_USAGE : answer.usage,
        cost_usd: answer.fromCache ? 0 : answer.costUsd,
        latency_ms: Math.round((ended - started) * 100) / 100,
        ...(firstChunkAt === undefined ? {} : { ttft_ms: Math.round((firstChunkAt - started) * 100) / 100 }),
      });
      // After the answer went out: neither the log line nor the ledger delays it.
      // Model calls are logged at info; cache hits, the cheap and frequent case, at debug.
      this.deps.logger[answer.fromCache ? 'debug' : 'info'](
        { task_type: req.task_type, mode: req.mode, model: answer.model, cached: answer.fromCache, latency_ms: Math.round(ended - started) },
        'chat answered',
      );
      this.remember(req, requestId, answer, ended - started);
    } catch (err) {
      const e = signal.aborted && signal.reason instanceof AppError ? signal.reason : toError(err);
      this.deps.metrics.requests.inc({ model: task.model, task_type: task.taskType, status: 'error' });
      if (e instanceof UpstreamError) this.deps.metrics.upstreamErrors.inc({ model: task.model, kind: e.kind });
      if (e.code === 'internal') this.deps.logger.error({ err }, 'chat request failed');
      else this.deps.logger.warn({ code: e.code, msg_detail: e.message }, 'chat request ended with an error');
      out.error(e.code, e.message, e.retryable);
    }
  }

  /** A turn of a known session without history of its own continues from the stored conversation. */
  private async withSessionHistory(req: ChatRequest): Promise<ChatRequest> {
    if (!req.session_id || req.history.length > 0) return req;
    try {
      const turns = await this.deps.store.history({ user_id: req.user_id, session_id: req.session_id, limit: SESSION_HISTORY_TURNS });
      if (turns.length === 0) return req;
      const history = turns.flatMap((t) => [
        { role: 'user' as const, content: t.message },
        { role: 'assistant' as const, content: t.response },
      ]);
      return { ...req, history };
    } catch (err) {
      this.deps.logger.warn({ err }, 'conversation history unavailable; answering without it');
      return req;
    }
  }

  /** Records the turn after the answer went out; the store never fails or delays an answer. */
  private remember(req: ChatRequest, requestId: string, a: FlightAnswer, latencyMs: number): void {
    this.deps.store
      .appendTurn({
        request_id: requestId,
        ...(req.session_id ? { session_id: req.session_id } : {}),
        user_id: req.user_id,
        mode: req.mode,
        task_type: req.task_type,
        message: req.message,
        response: a.text,
        model: a.model,
        cached: a.fromCache,
        usage: a.fromCache ? ZERO_USAGE : a.usage,
        cost_usd: a.fromCache ? 0 : a.costUsd,
        latency_ms: latencyMs,
        created_at: new Date(),
      })
      .catch((err: unknown) => this.deps.logger.warn({ err }, 'could not store the conversation turn'));
  }

  private keyFor(req: ChatRequest, task: TaskProfile): string {
    return cacheKey(
      {
        task_type: req.task_type,
        mode: req.mode,
        model: task.model,
        prompt_version: String(task.promptVersion),
        history: req.history,
        message: req.message,
        context: req.context,
        scope: sharingScopeFor(req.task_type, req.user_id, this.deps.sharing),
      },
      this.deps.cache.prefix,
    );
  }

  /** The flight of one key: wait for another replica's answer, or be the one that calls the model. */
  private startFlight(key: string, req: ChatRequest, task: TaskProfile): LocalFlight {
    const flight = new LocalFlight();
    this.flights.set(key, flight);
    void this.fly(flight, key, req, task).finally(() => this.flights.delete(key));
    return flight;
  }

  private async fly(flight: LocalFlight, key: string, req: ChatRequest, task: TaskProfile): Promise<void> {
    const { cache } = this.deps;
    try {
      for (let round = 0; round < MAX_FLIGHT_ROUNDS; round++) {
        const lease = await cache.acquireFlight(key, this.leaseMs);
        if (lease === 'busy') {
          const entry = await cache.waitForFlight(key, { signal: flight.signal, timeoutMs: this.waitMs });
          if (entry) return flight.resolve(this.replay(entry, (d) => flight.push(d)));
          if (flight.signal.aborted) throw flight.signal.reason ?? new AppError('cancelled');
          continue;
        }
        // A lease, or 'unavailable' (Redis down): call the model; failing open beats failing.
        // A short lease, renewed while the model answers: a replica that dies frees the key within seconds.
        const renew = lease === 'unavailable' ? undefined : setInterval(() => void lease.extend(this.leaseMs), this.leaseMs / 3);
        renew?.unref();
        try {
          // Re-check under the lock: a leader may have stored the answer between our miss and our lease.
          const stored = lease === 'unavailable' ? null : await cache.lookup(key, { record: false });
          if (stored) return flight.resolve(this.replay(stored, (d) => flight.push(d)));
          return await this.answerAndStore(flight, key, req, task);
        } finally {
          clearInterval(renew);
          if (lease !== 'unavailable') await lease.release();
        }
      }
      await this.answerAndStore(flight, key, req, task);
    } catch (err) {
      flight.fail(err);
    }
  }

  /** Call the model and check the answer; `cacheable` says whether it passed and may be stored. */
  private async generate(
    req: ChatRequest,
    task: TaskProfile,
    onDelta: (d: string) => void,
    signal: AbortSignal,
  ): Promise<{ answer: FlightAnswer; cacheable: boolean }> {
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
    const answer: FlightAnswer = {
      text: completion.text,
      suggestions: suggestions.length > 0 ? suggestions : task.defaultSuggestions,
      model: completion.model,
      usage: completion.usage,
      costUsd: costUsd(task.model, completion.usage),
      fromCache: false,
    };
    return { answer, cacheable: verdict.passed };
  }

  /**
   * The flight's answer goes to its followers first, then into the cache: the store costs the clients no
   * latency, and it still happens before the lock is released, so other replicas' waiters find it.
   */
  private async answerAndStore(flight: LocalFlight, key: string, req: ChatRequest, task: TaskProfile): Promise<void> {
    const { answer, cacheable } = await this.generate(req, task, (d) => flight.push(d), flight.signal);
    flight.resolve(answer);
    if (!cacheable) return;
    const entry: CacheEntry = {
      v: 1,
      response: answer.text,
      suggestions: answer.suggestions,
      model: answer.model,
      usage: answer.usage,
      cost_usd: answer.costUsd,
      created_at: Date.now(),
    };
    await this.deps.cache.store(key, entry, task.ttlSeconds);
  }

  /** A cached answer streams back with the same frames as a live one: one chunk, then `done`. */
  private replay(entry: CacheEntry, onDelta: (d: string) => void): FlightAnswer {
    onDelta(entry.response);
    return {
      text: entry.response,
      suggestions: entry.suggestions,
      model: entry.model,
      usage: entry.usage,
      costUsd: entry.cost_usd,
      fromCache: true,
    };
  }

  private record(task: TaskProfile, a: FlightAnswer, latencyMs: number, ttftMs: number | undefined): void {
    const s = this.seriesFor(a.model, task.taskType, a.fromCache);
    s.requests.inc();
    s.latency.observe(latencyMs / 1000);
    if (ttftMs !== undefined) s.ttft.observe(ttftMs / 1000);
    if (!a.fromCache) {
      s.promptTokens.inc(a.usage.prompt_tokens);
      s.completionTokens.inc(a.usage.completion_tokens);
      s.cost.inc(a.costUsd);
    }
  }

  /** Labelled children made once per label set: prom-client checks and hashes labels on every call otherwise. */
  private seriesFor(model: string, taskType: TaskType, fromCache: boolean): AnswerSeries {
    const id = `${model}\u0000${taskType}\u0000${fromCache}`;
    let s = this.series.get(id);
    if (!s) {
      const m = this.deps.metrics;
      const labels = { model, task_type: taskType };
      const cached = fromCache ? 'true' : 'false';
      s = {
        requests: m.requests.labels({ ...labels, status: fromCache ? 'cached' : 'success' }),
        latency: m.latency.labels({ ...labels, cached }),
        ttft: m.timeToFirstToken.labels({ ...labels, cached }),
        promptTokens: m.tokens.labels({ ...labels, kind: 'prompt' }),
        completionTokens: m.tokens.labels({ ...labels, kind: 'completion' }),
        cost: m.cost.labels(labels),
      };
      this.series.set(id, s);
    }
    return s;
  }
}

/** The request id and a child span of the current trace, for the model call. */
function traceHeaders(): Record<string, string> {
  const ctx = currentContext();
  if (!ctx) return {};
  return { [Headers.requestId]: ctx.request_id, [Headers.traceparent]: childTraceparent(ctx.traceparent) };
}

function toError(err: unknown): AppError {
  return err instanceof AppError ? err : new AppError('internal', undefined, { cause: err });
}

/** Settles with `p`, or rejects as soon as `signal` aborts (the flight may go on for other followers). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
