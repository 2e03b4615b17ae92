import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS } from '@actionedx/shared';

/**
 * The model router's metrics, per target (a configured endpoint and model: a handful of names, never a user or
 * a prompt). Failed calls are counted in `ai_upstream_errors_total{model, kind, target}` (the shared catalog).
 */
export function createRouterMetrics(registry: Registry) {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'ai_target_requests_total',
      help: 'HTTP calls of a model target, retries included, by outcome (ok, error, aborted: lost hedge or client gone)',
      labelNames: ['target', 'outcome'] as const,
      registers,
    }),
    timeToFirstToken: new Histogram({
      name: 'ai_target_time_to_first_token_seconds',
      help: 'Time from a call of a model target to its first token',
      labelNames: ['target'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    breakerState: new Gauge({
      name: 'ai_target_breaker_state',
      help: "State of a model target's circuit breaker in this replica: 0 closed, 1 half open, 2 open",
      labelNames: ['target'] as const,
      registers,
    }),
    retries: new Counter({
      name: 'ai_target_retries_total',
      help: 'Calls of a model target made again after a failure before the first token, by the kind of failure',
      labelNames: ['target', 'kind'] as const,
      registers,
    }),
    inFlight: new Gauge({
      name: 'ai_target_in_flight',
      help: 'Calls of a model target running now (its max_concurrency caps it)',
      labelNames: ['target'] as const,
      registers,
    }),
    fallbacks: new Counter({
      name: 'ai_fallbacks_total',
      help: 'Answers moved from a target to the next, by reason (an error kind, breaker_open, cooling, saturated, quality) and phase (before_first_token: invisible; mid_stream: the client got a reset)',
      labelNames: ['target', 'reason', 'phase'] as const,
      registers,
    }),
    hedges: new Counter({
      name: 'ai_hedges_total',
      help: 'Hedged calls (the next target started because the first sent no token in time), by the first target and who won (primary, hedge, none)',
      labelNames: ['target', 'winner'] as const,
      registers,
    }),
    usageEstimated: new Counter({
      name: 'ai_usage_estimated_total',
      help: 'Answers whose provider sent no usage: tokens counted with a tokenizer and marked estimated',
      labelNames: ['model'] as const,
      registers,
    }),
  };
}
export type RouterMetrics = ReturnType<typeof createRouterMetrics>;

/** `ai_target_breaker_state` values. */
export const BREAKER_GAUGE = { closed: 0, half_open: 1, open: 2 } as const;
