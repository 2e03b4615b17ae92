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
      help: 'Failed model calls by kind (rate_limited, timeout, server_error, connection, bad_response)',
      labelNames: ['model', 'kind'] as const,
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
