import { UnrecoverableError, Worker } from 'bullmq';
import {
  AppError,
  CANCELLED_ERROR,
  isTerminalJobState,
  toAppError,
  type ChatRequest,
  type JobEndings,
  type JobEvents,
  type JobMetrics,
  type JobRecord,
  type JobStore,
  type Logger,
  type StepRecord,
  type Usage,
} from '@actionedx/shared';
import type { AnswerMetrics, CachedAnswers } from '../chat/index.js';
import type { ConversationStore } from '../store/index.js';
import { UpstreamError } from '../llm/index.js';
import type { TaskProfile, TaskRegistry } from '../tasks/index.js';
import { resultOf, type JobKindRegistry, type JobPlan, type PlannedStep } from './job-kinds.js';

export interface JobRunnerDeps {
  store: JobStore;
  events: JobEvents;
  endings: JobEndings;
  kinds: JobKindRegistry;
  tasks: TaskRegistry;
  /** The chat pipeline's cache-or-model path: each step is one request through it. */
  answers: CachedAnswers;
  answerMetrics: AnswerMetrics;
  metrics: JobMetrics;
  /** The job's result also goes in the conversation store (and its usage ledger). */
  conversations: ConversationStore;
  workerId: string;
  logger: Logger;
  /** The queue's wait after a provider 429 that names no retry-after. */
  rateLimitMs: number;
}

/** One attempt at a job, as the queue hands it over. */
export interface JobAttempt {
  jobId: string;
  /** 1 for the first attempt; a retry after a failure is one more (what `maxAttempts` bounds). */
  attempt: number;
  maxAttempts: number;
  /** Times the job was started in all, also after a lost worker or a rate-limit wait (shown as `attempts`). */
  started: number;
  /** Aborted by a cancel (or by the worker shutting down): the running model call stops. */
  signal: AbortSignal;
  /** Pauses the whole queue for `ms` (every worker): the provider is rate limiting. */
  rateLimit(ms: number): Promise<void>;
}

const ZERO_USAGE: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
/** Longest wait the queue takes from a retry-after header. */
const MAX_RATE_LIMIT_MS = 60_000;

/**
 * Runs what is left of a job: steps already stored by an earlier attempt are skipped (not paid for again), each
 * other step is one request through the answer pipeline and is stored as soon as it is done, then the result.
 * Resolving completes the queue's job; throwing hands the decision to BullMQ: an `UnrecoverableError` ends it, a
 * `RateLimitError` puts it back without using an attempt, anything else is retried with backoff.
 */
export class JobRunner {
  constructor(private readonly deps: JobRunnerDeps) {}

  async run(attempt: JobAttempt): Promise<'completed' | 'skipped'> {
    const { store } = this.deps;
    const rec = await store.get(attempt.jobId);
    // Gone (past retention), or ended while queued (a cancel at the gateway): nothing to do.
    if (!rec || isTerminalJobState(rec.state)) return 'skipped';
    if (rec.cancel_requested) return this.cancelled(rec);
    const plan = this.deps.kinds.get(rec.kind).plan(rec);
    const task = this.deps.tasks.get(rec.task_type);
    const total = plan.steps.length + (plan.synthesis ? 1 : 0);
    const done = await store.steps(rec.id);
    if (done.size > 0) this.deps.metrics.stepsSkipped.inc({ kind: rec.kind }, done.size);
    const live = { ...rec, steps_total: total };
    try {
      await store.update(rec.id, {
        state: 'active',
        started_at: rec.started_at ?? Date.now(),
        attempts: attempt.started,
        steps_total: total,
        steps_done: done.size,
        percent: percentOf(done.size, total),
        message: done.size > 0 ? `resumed after ${done.size} of ${total} steps` : 'started',
      });
      await this.progress(live, done.size, done.size > 0 ? `resumed after ${done.size} of ${total} steps` : 'started');
      for (const step of plan.steps) {
        if (done.has(step.index)) continue;
        await this.runStep(live, task, step, attempt, done);
      }
      if (plan.synthesis && !done.has(plan.steps.length)) {
        const parts = plan.steps.map((s) => done.get(s.index)!);
        await this.runStep(live, task, plan.synthesis(parts), attempt, done);
      }
      return await this.complete(live, plan, done);
    } catch (err) {
      return this.onError(live, err, attempt, done);
    }
  }

  private async runStep(rec: JobRecord, task: TaskProfile, step: PlannedStep, attempt: JobAttempt, done: Map<number, StepRecord>): Promise<void> {
    // A cancel whose bus message was lost still stops the job at the next step.
    if (attempt.signal.aborted || (await this.deps.store.cancelRequested(rec.id))) throw new AppError('cancelled');
    const req: ChatRequest = {
      user_id: rec.owner,
      message: step.message,
      mode: rec.mode,
      task_type: rec.task_type,
      context: {},
      history: [],
      use_cache: rec.use_cache,
    };
    const started = performance.now();
    let ttft: number | undefined;
    let result;
    try {
      // A step keeps only the whole answer: streamed pieces matter only for its time to first token.
      const stream = { onDelta: () => void (ttft ??= performance.now() - started), onReset: () => {} };
      result = await this.deps.answers.answer(req, task, stream, attempt.signal);
    } catch (err) {
      this.deps.answerMetrics.failed(task);
      throw err;
    }
    const ms = performance.now() - started;
    const cached = result.source !== 'model';
    const { entry } = result;
    this.deps.answerMetrics.answered(task, entry, cached, ms, ttft);
    this.deps.metrics.stepDuration.observe({ kind: rec.kind, step: step.kind, cached: String(cached) }, ms / 1000);
    const stored: StepRecord = {
      index: step.index,
      label: step.label,
      response: entry.response,
      suggestions: entry.suggestions,
      model: entry.model,
      cached,
      usage: cached ? ZERO_USAGE : entry.usage,
      cost_usd: cached ? 0 : entry.cost_usd,
      worker_id: this.deps.workerId,
      attempt: attempt.attempt,
      ms: Math.round(ms),
    };
    await this.deps.store.saveStep(rec.id, stored);
    done.set(step.index, stored);
    const message = `${step.label} done`;
    await this.deps.store.update(rec.id, { steps_done: done.size, percent: percentOf(done.size, rec.steps_total), message });
    await this.progress(rec, done.size, message);
  }

  private async complete(rec: JobRecord, plan: JobPlan, done: Map<number, StepRecord>): Promise<'completed'> {
    const result = resultOf(plan, done);
    const { usage, cost_usd } = spentOn(done);
    if (await this.deps.endings.completed(rec, result, usage, cost_usd)) {
      this.deps.metrics.completed.inc({ kind: rec.kind });
      this.deps.metrics.duration.observe({ kind: rec.kind, outcome: 'completed' }, (Date.now() - rec.created_at) / 1000);
      this.deps.logger.info({ job_id: rec.id, kind: rec.kind, steps: done.size, cost_usd }, 'job completed');
      this.remember(rec, result.summary ?? result.parts.map((p) => `${p.label}\n${p.response}`).join('\n\n'), done, usage, cost_usd);
    }
    return 'completed';
  }

  /** Decides what a failed attempt means: cancelled, rate limited (wait), retried, or the end of the job. */
  private async onError(rec: JobRecord, err: unknown, attempt: JobAttempt, done: Map<number, StepRecord>): Promise<never> {
    const { store, metrics, logger } = this.deps;
    if (await store.cancelRequested(rec.id).catch(() => false)) return this.cancelled(rec, done);
    const e = toAppError(err);
    if (attempt.signal.aborted) {
      // Not a cancel: the worker is shutting down or lost the job's lock. The queue (stalled-job recovery or a
      // retry) hands it to a worker again; the steps stored so far stay done.
      logger.warn({ job_id: rec.id, reason: String(attempt.signal.reason) }, 'job attempt interrupted');
      throw err;
    }
    if (rateLimited(e)) {
      const waitMs = retryAfterMs(err) ?? this.deps.rateLimitMs;
      metrics.retries.inc({ kind: rec.kind, reason: 'rate_limited' });
      const message = `waiting ${Math.ceil(waitMs / 1000)} s: the model provider is rate limiting`;
      await store.update(rec.id, { state: 'queued', message });
      await this.progress(rec, done.size, message, 'queued');
      await attempt.rateLimit(waitMs);
      logger.info({ job_id: rec.id, wait_ms: waitMs }, 'job waits for the provider rate limit');
      throw Worker.RateLimitError();
    }
    const final = !e.retryable || attempt.attempt >= attempt.maxAttempts;
    if (final) {
      const error = { code: e.code, message: e.message, retryable: e.retryable };
      if (await this.deps.endings.failed(rec, 'failed', error, spentOn(done))) {
        metrics.failures.inc({ kind: rec.kind, reason: e.code });
        metrics.duration.observe({ kind: rec.kind, outcome: 'failed' }, (Date.now() - rec.created_at) / 1000);
      }
      logger.warn({ job_id: rec.id, code: e.code, attempt: attempt.attempt }, 'job failed');
      throw new UnrecoverableError(e.message);
    }
    metrics.retries.inc({ kind: rec.kind, reason: e.code });
    const message = `retrying after ${e.code} (attempt ${attempt.attempt} of ${attempt.maxAttempts})`;
    await store.update(rec.id, { state: 'queued', message }).catch(() => false);
    await this.progress(rec, done.size, message, 'queued').catch(() => undefined);
    logger.warn({ job_id: rec.id, code: e.code, attempt: attempt.attempt }, 'job attempt failed; retrying');
    throw err;
  }

  private async cancelled(rec: JobRecord, done?: Map<number, StepRecord>): Promise<never> {
    if (await this.deps.endings.failed(rec, 'cancelled', CANCELLED_ERROR, done ? spentOn(done) : undefined)) {
      this.deps.metrics.failures.inc({ kind: rec.kind, reason: 'cancelled' });
      this.deps.metrics.duration.observe({ kind: rec.kind, outcome: 'cancelled' }, (Date.now() - rec.created_at) / 1000);
      this.deps.logger.info({ job_id: rec.id }, 'job cancelled');
    }
    throw new UnrecoverableError('cancelled');
  }

  private async progress(rec: JobRecord, stepsDone: number, message: string, state: 'queued' | 'active' = 'active'): Promise<void> {
    await this.deps.events.emit(rec.owner, {
      type: 'job_progress',
      job_id: rec.id,
      kind: rec.kind,
      state,
      percent: percentOf(stepsDone, rec.steps_total),
      message,
      steps_done: stepsDone,
      steps_total: rec.steps_total,
    });
  }

  /** The job as one turn of the conversation store (its session's, when it has one) and of the usage ledger. */
  private remember(rec: JobRecord, response: string, done: Map<number, StepRecord>, usage: Usage, costUsd: number): void {
    const steps = [...done.values()];
    this.deps.conversations
      .appendTurn({
        request_id: `job:${rec.id}`,
        ...(rec.session_id ? { session_id: rec.session_id } : {}),
        user_id: rec.owner,
        mode: rec.mode,
        task_type: rec.task_type,
        message: `[${rec.kind}] ${rec.title ?? rec.id} (${steps.length} steps)`,
        response,
        model: steps.at(-1)?.model ?? 'unknown',
        cached: steps.every((s) => s.cached),
        usage,
        cost_usd: costUsd,
        latency_ms: Date.now() - rec.created_at,
        created_at: new Date(),
      })
      .catch((err: unknown) => this.deps.logger.warn({ err, job_id: rec.id }, 'could not store the job in the conversation store'));
  }
}

const percentOf = (done: number, total: number): number => (total === 0 ? 0 : Math.min(100, Math.floor((done / total) * 100)));

function spentOn(done: Map<number, StepRecord>): { usage: Usage; cost_usd: number } {
  const usage = { ...ZERO_USAGE };
  let cost = 0;
  for (const s of done.values()) {
    usage.prompt_tokens += s.usage.prompt_tokens;
    usage.completion_tokens += s.usage.completion_tokens;
    usage.total_tokens += s.usage.total_tokens;
    cost += s.cost_usd;
  }
  return { usage, cost_usd: Math.round(cost * 1e8) / 1e8 };
}

/** The provider is rate limiting: directly, or as the reason every model target was unavailable. */
function rateLimited(e: AppError): boolean {
  if (e.code === 'upstream_rate_limited') return true;
  return e.code === 'upstream_unavailable' && e.cause instanceof UpstreamError && e.cause.kind === 'rate_limited';
}

/** The provider's retry-after (seconds or an HTTP date) on a rate-limit error, bounded. */
function retryAfterMs(err: unknown): number | undefined {
  if (err instanceof AppError && err.retryAfterMs !== undefined) return Math.min(MAX_RATE_LIMIT_MS, Math.max(250, err.retryAfterMs));
  const headers = ((err as { cause?: { headers?: { get?: (name: string) => string | null } } }).cause)?.headers;
  const raw = headers?.get?.('retry-after');
  if (!raw) return undefined;
  const seconds = Number(raw);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(raw) - Date.now();
  return Number.isFinite(ms) ? Math.min(MAX_RATE_LIMIT_MS, Math.max(250, Math.round(ms))) : undefined;
}
