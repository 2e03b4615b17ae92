import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { FAST_BUCKETS, LATENCY_BUCKETS } from './registry.js';

/**
 * The metrics of the platform. The seed's names are a contract (dashboards and alerts read them);
 * labels stay low-cardinality: never a user id, a session id or prompt text.
 */

export function createAiMetrics(registry: Registry) {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'ai_requests_total',
      help: 'AI requests by model, task type and outcome (success, cached, error)',
      labelNames: ['model', 'task_type', 'status'] as const,
      registers,
    }),
    latency: new Histogram({
      name: 'ai_request_latency_seconds',
      help: 'Time from a request reaching a worker to its terminal frame',
      labelNames: ['model', 'task_type', 'cached'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    tokens: new Counter({
      name: 'ai_tokens_used_total',
      help: 'Tokens used, by model, task type and kind (prompt, completion)',
      labelNames: ['model', 'task_type', 'kind'] as const,
      registers,
    }),
    cost: new Counter({
      name: 'ai_cost_usd_total',
      help: 'Cost of model calls in US dollars',
      labelNames: ['model', 'task_type'] as const,
      registers,
    }),
    quality: new Gauge({
      name: 'ai_response_quality_score',
      help: 'Quality score (0-1) of the latest answer, by model and task type',
      labelNames: ['model', 'task_type'] as const,
      registers,
    }),
    timeToFirstToken: new Histogram({
      name: 'ai_time_to_first_token_seconds',
      help: 'Time from a request reaching a worker to its first chunk',
      labelNames: ['model', 'task_type', 'cached'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    upstreamErrors: new Counter({
      name: 'ai_upstream_errors_total',
      help: 'Failed model calls, retries included, by model, kind (rate_limited, timeout, first_token_timeout, stall, server_error, connection, bad_response, client_error) and target',
      labelNames: ['model', 'kind', 'target'] as const,
      registers,
    }),
    unpriced: new Counter({
      name: 'ai_unpriced_requests_total',
      help: 'Model calls recorded at cost 0 because their model has no price (set MODEL_PRICES)',
      labelNames: ['model'] as const,
      registers,
    }),
    inFlight: new Gauge({
      name: 'ai_requests_in_flight',
      help: 'Requests this worker is handling now',
      registers,
    }),
  };
}
export type AiMetrics = ReturnType<typeof createAiMetrics>;

export function createWebSocketMetrics(registry: Registry) {
  const registers = [registry];
  return {
    active: new Gauge({ name: 'websocket_active_connections', help: 'Open WebSocket connections', registers }),
    messages: new Counter({
      name: 'websocket_messages_total',
      help: 'WebSocket messages by direction (inbound, outbound)',
      labelNames: ['direction'] as const,
      registers,
    }),
    errors: new Counter({
      name: 'websocket_errors_total',
      help: 'WebSocket errors by type',
      labelNames: ['type'] as const,
      registers,
    }),
  };
}
export type WebSocketMetrics = ReturnType<typeof createWebSocketMetrics>;

export function createCacheMetrics(registry: Registry) {
  const registers = [registry];
  return {
    operations: new Counter({
      name: 'cache_operations_total',
      help: 'Cache operations (get, recheck, set, delete, invalidate) by result (hit, miss, success, error, skipped)',
      labelNames: ['operation', 'result'] as const,
      registers,
    }),
    keys: new Gauge({
      name: 'cache_keys_total',
      help: 'Cached answers by task type',
      labelNames: ['type'] as const,
      registers,
    }),
    sizeBytes: new Gauge({ name: 'cache_size_bytes', help: 'Memory used by the cache', registers }),
    breakerOpen: new Gauge({
      name: 'cache_breaker_open',
      help: '1 while the cache circuit breaker is open (Redis skipped, answers go to the model)',
      registers,
    }),
    lookupLatency: new Histogram({
      name: 'cache_lookup_latency_seconds',
      help: 'Time of a cache lookup, by result',
      labelNames: ['result'] as const,
      buckets: FAST_BUCKETS,
      registers,
    }),
    flightReservations: new Counter({
      name: 'cache_flight_reservations_total',
      help:
        'Single-flight locks reserved for misses put in the work queue, by outcome (reserved, busy: an identical miss holds it, ' +
        'unavailable: Redis down; adopted or expired: what the model lane found; released: a dropped job gave it back)',
      labelNames: ['outcome'] as const,
      registers,
    }),
  };
}
export type CacheMetrics = ReturnType<typeof createCacheMetrics>;

export function createDbMetrics(registry: Registry) {
  const registers = [registry];
  return {
    operations: new Counter({
      name: 'db_operations_total',
      help: 'Store operations by operation, collection and status',
      labelNames: ['operation', 'collection', 'status'] as const,
      registers,
    }),
    latency: new Histogram({
      name: 'db_operation_latency_seconds',
      help: 'Store operation latency',
      labelNames: ['operation', 'collection'] as const,
      buckets: FAST_BUCKETS,
      registers,
    }),
  };
}
export type DbMetrics = ReturnType<typeof createDbMetrics>;

export function createServiceHealthMetric(registry: Registry) {
  return new Gauge({
    name: 'service_health',
    help: 'Health of the service and each dependency (1 healthy, 0 unhealthy)',
    labelNames: ['component'] as const,
    registers: [registry],
  });
}
export type ServiceHealthMetric = ReturnType<typeof createServiceHealthMetric>;

export function createBusMetrics(registry: Registry) {
  const registers = [registry];
  return {
    roundTrip: new Histogram({
      name: 'bus_request_roundtrip_seconds',
      help: 'Bus request to reply (gateway: job to ack)',
      labelNames: ['subject'] as const,
      buckets: FAST_BUCKETS,
      registers,
    }),
    frames: new Counter({
      name: 'bus_frames_total',
      help: 'Frames sent or received on the bus, by type and direction',
      labelNames: ['type', 'direction'] as const,
      registers,
    }),
    retries: new Counter({
      name: 'bus_request_retries_total',
      help: 'Requests sent again to another worker, by reason (no_ack, worker_lost, retryable_error)',
      labelNames: ['reason'] as const,
      registers,
    }),
  };
}
export type BusMetrics = ReturnType<typeof createBusMetrics>;

/** Job durations: from a few seconds (a short batch) to an hour (a long document behind a rate limit). */
export const JOB_DURATION_BUCKETS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];

/** Background jobs, at the job workers (and the queue depth wherever a queue client runs). */
export function createJobMetrics(registry: Registry) {
  const registers = [registry];
  return {
    duration: new Histogram({
      name: 'jobs_duration_seconds',
      help: 'Time from a job being submitted to its end, by kind and outcome (completed, failed, cancelled)',
      labelNames: ['kind', 'outcome'] as const,
      buckets: JOB_DURATION_BUCKETS,
      registers,
    }),
    stepDuration: new Histogram({
      name: 'jobs_step_duration_seconds',
      help: 'Time of one step of a job (a section, an item, the synthesis), by kind, step and whether it came from the cache',
      labelNames: ['kind', 'step', 'cached'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    completed: new Counter({
      name: 'jobs_completed_total',
      help: 'Jobs that completed, by kind',
      labelNames: ['kind'] as const,
      registers,
    }),
    failures: new Counter({
      name: 'jobs_failures_total',
      help: 'Jobs that ended without a result, by kind and reason (an error code, or cancelled)',
      labelNames: ['kind', 'reason'] as const,
      registers,
    }),
    retries: new Counter({
      name: 'jobs_retries_total',
      help: 'Job attempts that will be tried again, by kind and reason (an error code, rate_limited, stalled)',
      labelNames: ['kind', 'reason'] as const,
      registers,
    }),
    stepsSkipped: new Counter({
      name: 'jobs_steps_skipped_total',
      help: 'Steps a retried job did not run again because an earlier attempt had stored them',
      labelNames: ['kind'] as const,
      registers,
    }),
    webhooks: new Counter({
      name: 'jobs_webhook_deliveries_total',
      help: 'Webhook delivery attempts, by outcome (delivered, retry, failed)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    active: new Gauge({
      name: 'jobs_active',
      help: 'Jobs this worker is running now',
      registers,
    }),
  };
}
export type JobMetrics = ReturnType<typeof createJobMetrics>;

/**
 * `jobs_queue_depth{queue,state}`, read from the queue Redis at each scrape. Every process with a queue
 * client reports the same figures: aggregate with max by (queue, state), never sum.
 */
export function createQueueDepthMetric(registry: Registry, read: () => Promise<Record<string, Record<string, number>>>) {
  return new Gauge({
    name: 'jobs_queue_depth',
    help: 'Jobs in the queue by state (waiting, active, delayed, prioritized, completed, failed), as BullMQ counts them',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      let timer: NodeJS.Timeout | undefined;
      try {
        // A scrape never waits on a queue Redis that does not answer.
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('queue counts timed out')), 1_000);
        });
        const byQueue = await Promise.race([read(), timeout]);
        this.reset();
        for (const [queue, counts] of Object.entries(byQueue)) {
          for (const [state, n] of Object.entries(counts)) this.set({ queue, state }, n);
        }
      } catch {
        // The queue Redis does not answer: no figures rather than stale ones.
        this.reset();
      } finally {
        clearTimeout(timer);
      }
    },
  });
}

/** At the gateway: job submissions by kind and outcome (accepted, rejected, unavailable). */
export function createJobSubmitMetric(registry: Registry) {
  return new Counter({
    name: 'jobs_submitted_total',
    help: 'Job submissions at the gateway, by kind and outcome (accepted, rejected, unavailable)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [registry],
  });
}

/**
 * The work queue of model calls (orchestrators): its depth as JetStream reports it (every replica reports the
 * same figure: aggregate with max), the wait of each job, this worker's slots, refusals and redeliveries.
 */
export function createQueueMetrics(registry: Registry) {
  const registers = [registry];
  return {
    jobs: new Gauge({
      name: 'chat_queue_jobs',
      help: 'Jobs in the work queue by state (waiting: not yet taken by a worker; running: taken, not yet acknowledged)',
      labelNames: ['state'] as const,
      registers,
    }),
    limit: new Gauge({
      name: 'chat_queue_limit_jobs',
      help: 'Jobs the work queue holds at most (QUEUE_MAX)',
      registers,
    }),
    waitTime: new Histogram({
      name: 'chat_queue_wait_seconds',
      help: 'Time a job waited in the work queue before a worker slot took it',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    slots: new Gauge({
      name: 'chat_worker_slots',
      help: 'Model-call slots of this worker by state (busy, total = MAX_IN_FLIGHT)',
      labelNames: ['state'] as const,
      registers,
    }),
    enqueued: new Counter({
      name: 'chat_queue_enqueued_total',
      help: 'Jobs this worker put in the work queue (cache misses)',
      registers,
    }),
    bypassed: new Counter({
      name: 'chat_queue_bypassed_total',
      help: 'Cache misses this worker ran at once in a model slot left waiting on an empty queue, instead of queueing them',
      registers,
    }),
    rejections: new Counter({
      name: 'chat_queue_rejections_total',
      help: 'Jobs the work queue refused, by reason (queue_full, user_share, unavailable): answered 503 overloaded or bus_unavailable',
      labelNames: ['reason'] as const,
      registers,
    }),
    redeliveries: new Counter({
      name: 'chat_queue_redeliveries_total',
      help: 'Jobs this worker took on a second or later delivery (an earlier worker died, stalled or handed it back)',
      registers,
    }),
  };
}
export type QueueMetrics = ReturnType<typeof createQueueMetrics>;
