import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import type { Logger, Usage } from '@actionedx/shared';
import { backoffDelay, CircuitBreaker, ConcurrencyLimit, type BreakerState } from '../resilience/index.js';
import type { PromptMessage } from '../tasks/index.js';
import { streamCompletion } from './completion-stream.js';
import { BREAKER_GAUGE, type RouterMetrics } from './router-metrics.js';
import type { TargetConfig } from './targets-config.js';
import type { TokenCounter } from './token-counter.js';
import { UpstreamError, type UpstreamErrorKind } from './upstream-error.js';

/** Why a target was passed over without a call. */
export type SkipReason = 'breaker_open' | 'cooling' | 'saturated';

/** A slot on a target, held for one call (with its retries). */
export interface Permit {
  release(): void;
}

export interface TargetCall {
  messages: PromptMessage[];
  maxTokens: number;
  temperature?: number;
  signal: AbortSignal;
  onDelta: (delta: string) => void;
  headers?: Record<string, string>;
  /** Another target could take over: a rate limit is not waited out here. */
  hasFallback: boolean;
}

/** A whole answer from one target. */
export interface Completion {
  text: string;
  usage: Usage;
  /** Counted with a tokenizer because the provider sent no usage. */
  usageEstimated: boolean;
  /** `stop` when the model finished; anything else means the answer was cut short. */
  finishReason: string;
  /** The model that answered, as the provider names it (often a dated snapshot). */
  model: string;
  /** The model the target asks for. */
  requestedModel: string;
  /** The target that answered. */
  target: string;
}

export interface ModelTargetDeps {
  metrics: RouterMetrics;
  /** `ai_upstream_errors_total` */
  upstreamErrors: { inc(labels: { model: string; kind: UpstreamErrorKind; target: string }): void };
  tokens: TokenCounter;
  logger: Logger;
  /** Base URL for a target that names none (OPENAI_BASE_URL, or the embedded mode's mock). */
  defaultBaseUrl?: string | undefined;
}

/**
 * One configured endpoint and model: its `openai` client, its circuit breaker, its concurrency cap, its
 * `retry-after` cool-down, and the retries of a call before its first token. State is this replica's own.
 */
export class ModelTarget {
  readonly name: string;
  readonly model: string;
  private readonly client: OpenAI;
  private readonly breaker: CircuitBreaker;
  private readonly limit: ConcurrencyLimit;
  /** Epoch ms before which new calls skip this target: the provider said `retry-after`. */
  private coolUntil = 0;
  private readonly inFlight: { inc(): void; dec(): void };

  constructor(
    private readonly cfg: TargetConfig,
    private readonly deps: ModelTargetDeps,
  ) {
    this.name = cfg.name;
    this.model = cfg.model;
    const baseURL = cfg.baseUrl ?? deps.defaultBaseUrl;
    // The SDK makes the request and classifies errors; retries are ours, so the breaker and metrics see each one.
    this.client = new OpenAI({ apiKey: cfg.apiKey, ...(baseURL ? { baseURL } : {}), timeout: cfg.requestTimeoutMs, maxRetries: 0 });
    const gauge = deps.metrics.breakerState.labels({ target: cfg.name });
    gauge.set(BREAKER_GAUGE.closed);
    this.inFlight = deps.metrics.inFlight.labels({ target: cfg.name });
    this.limit = new ConcurrencyLimit(cfg.maxConcurrency);
    const b = cfg.breaker;
    this.breaker = new CircuitBreaker({
      failureThreshold: b.failures,
      ...(b.errorRate ? { errorRate: b.errorRate } : {}),
      cooldownMs: b.cooldownMs,
      halfOpenProbes: b.probes,
      onStateChange: (state) => {
        gauge.set(BREAKER_GAUGE[state]);
        const log = { target: cfg.name, model: cfg.model, state };
        if (state === 'open') deps.logger.warn(log, 'model target circuit open: its calls go to the next target');
        else deps.logger.info(log, state === 'closed' ? 'model target circuit closed' : 'model target circuit half open: trial calls');
      },
    });
  }

  breakerState(): BreakerState {
    return this.breaker.state();
  }

  /** A permit to call now, or why not: cooling down after a `retry-after`, at its cap, or its breaker open. */
  admit(): Permit | SkipReason {
    if (Date.now() < this.coolUntil) return 'cooling';
    const release = this.limit.tryAcquire();
    if (!release) return 'saturated';
    // Last: in the half-open state, allow() hands out one of the few trial slots.
    if (!this.breaker.allow()) {
      release();
      return 'breaker_open';
    }
    this.inFlight.inc();
    return {
      release: () => {
        release();
        this.inFlight.dec();
      },
    };
  }

  /**
   * Streams one answer into `call.onDelta`. Before the first token, a rate limit, a server error or a broken
   * connection is tried again after a backoff (or the provider's `retry-after`), up to `maxRetries`; anything
   * else, or a failure after text was sent, rejects at once. Releases the permit at the end.
   */
  async call(permit: Permit, call: TargetCall): Promise<Completion> {
    try {
      for (let retry = 0; ; retry++) {
        let emitted = false;
        const started = performance.now();
        try {
          const streamed = await streamCompletion(this.client, {
            model: this.cfg.model,
            messages: call.messages,
            maxTokens: call.maxTokens,
            ...(call.temperature === undefined ? {} : { temperature: call.temperature }),
            signal: call.signal,
            ...(call.headers ? { headers: call.headers } : {}),
            firstTokenTimeoutMs: this.cfg.firstTokenTimeoutMs,
            stallTimeoutMs: this.cfg.stallTimeoutMs,
            onDelta: (d) => {
              emitted = true;
              call.onDelta(d);
            },
            onFirstToken: () => this.deps.metrics.timeToFirstToken.observe({ target: this.name }, (performance.now() - started) / 1000),
            onNoUsageExpected: () => this.deps.tokens.prepare(this.cfg.model),
          });
          this.breaker.success();
          this.deps.metrics.requests.inc({ target: this.name, outcome: 'ok' });
          return await this.complete(streamed, call.messages);
        } catch (err) {
          if (!(err instanceof UpstreamError) || call.signal.aborted) {
            // Aborted by the caller (client gone, lost hedge, deadline): nothing learnt about the target.
            this.breaker.release();
            this.deps.metrics.requests.inc({ target: this.name, outcome: 'aborted' });
            throw err;
          }
          this.failed(err);
          const wait = this.retryWait(err, retry, call.hasFallback, emitted);
          if (wait === undefined) throw err;
          this.deps.metrics.retries.inc({ target: this.name, kind: err.kind });
          this.deps.logger.debug({ target: this.name, kind: err.kind, retry: retry + 1, wait_ms: wait }, 'retrying the model target');
          await sleep(wait, undefined, { signal: call.signal }).catch(() => {
            throw call.signal.reason;
          });
          // The breaker may have opened meanwhile (other requests failed too): stop trying this target.
          if (!this.breaker.allow()) throw err;
        }
      }
    } finally {
      permit.release();
    }
  }

  private failed(err: UpstreamError): void {
    if (err.countsAgainstTarget) this.breaker.failure();
    else this.breaker.success(); // it answered: the request was at fault, not the target
    this.deps.metrics.requests.inc({ target: this.name, outcome: 'error' });
    this.deps.upstreamErrors.inc({ model: this.cfg.model, kind: err.kind, target: this.name });
    if (err.retryAfterMs !== undefined && err.retryAfterMs > 0) {
      this.coolUntil = Math.max(this.coolUntil, Date.now() + err.retryAfterMs);
    }
  }

  /** How long to wait before trying this target again for this call, or undefined to give up on it. */
  private retryWait(err: UpstreamError, retry: number, hasFallback: boolean, emitted: boolean): number | undefined {
    if (emitted || retry >= this.cfg.maxRetries || !err.worthRetrying) return undefined;
    if (err.retryAfterMs !== undefined) {
      // Waiting out a rate limit while another target could answer now makes no sense.
      if (err.kind === 'rate_limited' && hasFallback) return undefined;
      return err.retryAfterMs <= this.cfg.maxRetryDelayMs ? err.retryAfterMs : undefined;
    }
    if (err.kind === 'rate_limited' && hasFallback) return undefined;
    return backoffDelay(retry);
  }

  /** The usage the provider sent, or a tokenizer's count when it sent none (or zeros for a non-empty answer). */
  private async complete(s: Awaited<ReturnType<typeof streamCompletion>>, messages: PromptMessage[]): Promise<Completion> {
    const base = { text: s.text, finishReason: s.finishReason, model: s.model, requestedModel: this.cfg.model, target: this.name };
    const reported = s.usage && !(s.usage.completion_tokens === 0 && s.text.length > 0) ? s.usage : undefined;
    if (reported) {
      const total = reported.total_tokens || reported.prompt_tokens + reported.completion_tokens;
      return { ...base, usage: { ...reported, total_tokens: total }, usageEstimated: false };
    }
    this.deps.metrics.usageEstimated.inc({ model: this.cfg.model });
    return { ...base, usage: await this.deps.tokens.usage(this.cfg.model, messages, s.text), usageEstimated: true };
  }
}
