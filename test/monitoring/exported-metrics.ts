/**
 * The metrics the dashboards and alert rules rely on, per service: the one list that
 * `monitoring/` is checked against here, and that an integration test checks against the
 * live services' `/metrics`.
 *
 * `labels` are the labels dashboards and rules use (a subset of what a service may export);
 * every series also carries `service` (the registry's default label) and the labels Prometheus
 * adds at scrape time (see TARGET_LABELS).
 */

/** `job-worker`: the orchestrator run with ROLE=jobs (its series carry service="orchestrator", job="job-worker"). */
export type ServiceName = 'gateway' | 'orchestrator' | 'job-worker' | 'mock-llm';
export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec {
  readonly type: MetricType;
  readonly labels: readonly string[];
}

/** prom-client's collectDefaultMetrics() names that the dashboards and rules use. */
const PROCESS_METRICS = {
  process_cpu_seconds_total: { type: 'counter', labels: [] },
  process_resident_memory_bytes: { type: 'gauge', labels: [] },
  process_start_time_seconds: { type: 'gauge', labels: [] },
  nodejs_heap_size_used_bytes: { type: 'gauge', labels: [] },
  nodejs_eventloop_lag_p99_seconds: { type: 'gauge', labels: [] },
} as const satisfies Record<string, MetricSpec>;

export const EXPORTED_METRICS = {
  gateway: {
    ...PROCESS_METRICS,
    service_health: { type: 'gauge', labels: ['component'] },
    http_requests_total: { type: 'counter', labels: ['method', 'route', 'status'] },
    http_request_duration_seconds: { type: 'histogram', labels: ['route'] },
    gateway_requests_in_flight: { type: 'gauge', labels: [] },
    websocket_active_connections: { type: 'gauge', labels: [] },
    websocket_messages_total: { type: 'counter', labels: ['direction'] },
    websocket_errors_total: { type: 'counter', labels: ['type'] },
    bus_request_roundtrip_seconds: { type: 'histogram', labels: ['subject'] },
    bus_request_retries_total: { type: 'counter', labels: ['reason'] },
    bus_frames_total: { type: 'counter', labels: ['type', 'direction'] },
    jobs_submitted_total: { type: 'counter', labels: ['kind', 'outcome'] },
    jobs_queue_depth: { type: 'gauge', labels: ['queue', 'state'] },
    // The door: identity and admission.
    gateway_auth_failures_total: { type: 'counter', labels: ['reason', 'transport'] },
    gateway_auth_success_total: { type: 'counter', labels: ['method'] },
    gateway_rate_limited_total: { type: 'counter', labels: ['kind'] },
    gateway_limiter_errors_total: { type: 'counter', labels: ['operation'] },
    gateway_admission_seconds: { type: 'histogram', labels: [] },
    gateway_admission_leases_total: { type: 'counter', labels: ['event'] },
    websocket_closes_total: { type: 'counter', labels: ['reason'] },
    websocket_send_buffer_bytes: { type: 'gauge', labels: [] },
    ai_resumes_total: { type: 'counter', labels: ['outcome'] },
    // Collaboration sessions.
    session_fanout_messages_total: { type: 'counter', labels: ['direction'] },
    session_members_connected: { type: 'gauge', labels: [] },
    session_presence_changes_total: { type: 'counter', labels: ['change'] },
    session_turns_refused_total: { type: 'counter', labels: ['reason'] },
  },
  orchestrator: {
    ...PROCESS_METRICS,
    service_health: { type: 'gauge', labels: ['component'] },
    ai_requests_total: { type: 'counter', labels: ['model', 'task_type', 'status'] },
    ai_request_latency_seconds: { type: 'histogram', labels: ['model', 'task_type', 'cached'] },
    ai_time_to_first_token_seconds: { type: 'histogram', labels: ['model', 'task_type', 'cached'] },
    ai_tokens_used_total: { type: 'counter', labels: ['model', 'task_type', 'kind'] },
    ai_cost_usd_total: { type: 'counter', labels: ['model', 'task_type'] },
    ai_response_quality_score: { type: 'gauge', labels: ['model', 'task_type'] },
    ai_upstream_errors_total: { type: 'counter', labels: ['model', 'kind', 'target'] },
    ai_target_requests_total: { type: 'counter', labels: ['target', 'outcome'] },
    ai_target_time_to_first_token_seconds: { type: 'histogram', labels: ['target'] },
    ai_target_breaker_state: { type: 'gauge', labels: ['target'] },
    ai_target_retries_total: { type: 'counter', labels: ['target', 'kind'] },
    ai_target_in_flight: { type: 'gauge', labels: ['target'] },
    ai_fallbacks_total: { type: 'counter', labels: ['target', 'reason', 'phase'] },
    ai_hedges_total: { type: 'counter', labels: ['target', 'winner'] },
    ai_usage_estimated_total: { type: 'counter', labels: ['model'] },
    ai_unpriced_requests_total: { type: 'counter', labels: ['model'] },
    ai_requests_in_flight: { type: 'gauge', labels: [] },
    chat_queue_jobs: { type: 'gauge', labels: ['state'] },
    chat_queue_limit_jobs: { type: 'gauge', labels: [] },
    chat_queue_wait_seconds: { type: 'histogram', labels: [] },
    chat_worker_slots: { type: 'gauge', labels: ['state'] },
    chat_queue_enqueued_total: { type: 'counter', labels: [] },
    chat_queue_rejections_total: { type: 'counter', labels: ['reason'] },
    chat_queue_redeliveries_total: { type: 'counter', labels: [] },
    cache_operations_total: { type: 'counter', labels: ['operation', 'result'] },
    cache_keys_total: { type: 'gauge', labels: ['type'] },
    cache_size_bytes: { type: 'gauge', labels: [] },
    cache_lookup_latency_seconds: { type: 'histogram', labels: ['result'] },
    cache_breaker_open: { type: 'gauge', labels: [] },
    cache_flight_reservations_total: { type: 'counter', labels: ['outcome'] },
    db_operations_total: { type: 'counter', labels: ['operation', 'collection', 'status'] },
    db_operation_latency_seconds: { type: 'histogram', labels: ['operation', 'collection'] },
  },
  'job-worker': {
    ...PROCESS_METRICS,
    jobs_queue_depth: { type: 'gauge', labels: ['queue', 'state'] },
    jobs_duration_seconds: { type: 'histogram', labels: ['kind', 'outcome'] },
    jobs_step_duration_seconds: { type: 'histogram', labels: ['kind', 'step', 'cached'] },
    jobs_completed_total: { type: 'counter', labels: ['kind'] },
    jobs_failures_total: { type: 'counter', labels: ['kind', 'reason'] },
    jobs_retries_total: { type: 'counter', labels: ['kind', 'reason'] },
    jobs_steps_skipped_total: { type: 'counter', labels: ['kind'] },
    jobs_webhook_deliveries_total: { type: 'counter', labels: ['outcome'] },
    jobs_active: { type: 'gauge', labels: [] },
  },
  'mock-llm': {
    ...PROCESS_METRICS,
    mock_llm_completions_total: { type: 'counter', labels: [] },
    mock_llm_client_disconnects_total: { type: 'counter', labels: [] },
    mock_llm_in_flight: { type: 'gauge', labels: [] },
  },
} as const satisfies Record<ServiceName, Record<string, MetricSpec>>;

/** Labels on every series of our services: the registry's default label plus what Prometheus adds. */
export const TARGET_LABELS = [
  'service', // createMetricsRegistry(service) default label
  'job',
  'instance',
  // kubernetes_sd relabelling (monitoring/prometheus/prometheus.k8s.yml)
  'namespace',
  'pod',
  'node',
  'container',
] as const;

/** Series Prometheus itself creates for every target or rule, not exported by a service. */
export const PROMETHEUS_SYNTHETIC_METRICS: Readonly<Record<string, readonly string[]>> = {
  up: ['job', 'instance'],
  scrape_duration_seconds: ['job', 'instance'],
  ALERTS: ['alertname', 'alertstate', 'severity'],
};

/** The series names a metric produces in the exposition format (a histogram: _bucket, _sum, _count). */
export function seriesNames(name: string, spec: MetricSpec): string[] {
  return spec.type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
}

export interface SeriesInfo {
  readonly metric: string;
  readonly type: MetricType;
  readonly labels: ReadonlySet<string>;
  readonly services: readonly ServiceName[];
}

/** Every series name the services expose, with the labels usable on it (merged over services). */
export function exportedSeries(): Map<string, SeriesInfo> {
  const out = new Map<string, SeriesInfo>();
  for (const [service, metrics] of Object.entries(EXPORTED_METRICS) as [ServiceName, Record<string, MetricSpec>][]) {
    for (const [name, spec] of Object.entries(metrics)) {
      for (const series of seriesNames(name, spec)) {
        const labels = new Set<string>([...spec.labels, ...TARGET_LABELS]);
        if (series.endsWith('_bucket') && spec.type === 'histogram') labels.add('le');
        const prev = out.get(series);
        if (prev) {
          for (const l of prev.labels) labels.add(l);
          out.set(series, { ...prev, labels, services: [...prev.services, service] });
        } else {
          out.set(series, { metric: name, type: spec.type, labels, services: [service] });
        }
      }
    }
  }
  return out;
}
