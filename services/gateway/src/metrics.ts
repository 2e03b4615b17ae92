import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  FAST_BUCKETS,
  LATENCY_BUCKETS,
  createBusMetrics,
  createServiceHealthMetric,
  createWebSocketMetrics,
} from '@actionedx/shared';

/** Every metric the gateway exports; routes are labelled by pattern, never by raw URL. */
export function createGatewayMetrics(registry: Registry) {
  const registers = [registry];
  let sendBufferSource: () => number = () => 0;
  return {
    /** Where `websocket_send_buffer_bytes` reads from at each scrape. */
    measureSendBuffer(source: () => number): void {
      sendBufferSource = source;
    },
    wsSendBuffer: new Gauge({
      name: 'websocket_send_buffer_bytes',
      help: 'Bytes queued for WebSocket clients and not yet taken by them (slow readers hold them)',
      registers,
      collect() {
        this.set(sendBufferSource());
      },
    }),
    http: {
      requests: new Counter({
        name: 'http_requests_total',
        help: 'HTTP requests by method, route pattern and status',
        labelNames: ['method', 'route', 'status'] as const,
        registers,
      }),
      duration: new Histogram({
        name: 'http_request_duration_seconds',
        help: 'HTTP request duration by method and route pattern (streams: until the last event)',
        labelNames: ['method', 'route'] as const,
        buckets: LATENCY_BUCKETS,
        registers,
      }),
    },
    chat: {
      inFlight: new Gauge({
        name: 'gateway_requests_in_flight',
        help: 'Chat requests this gateway is dispatching now (REST, SSE and WebSocket turns)',
        registers,
      }),
      outcomes: new Counter({
        name: 'gateway_chat_outcomes_total',
        help: 'Finished chat requests by outcome (done or an error code)',
        labelNames: ['outcome'] as const,
        registers,
      }),
      droppedFrames: new Counter({
        name: 'gateway_frames_dropped_total',
        help: 'Frames ignored by the gateway, by reason (stale attempt, unknown request, malformed)',
        labelNames: ['reason'] as const,
        registers,
      }),
    },
    auth: {
      failures: new Counter({
        name: 'gateway_auth_failures_total',
        help: 'Refused credentials by reason (missing, expired, bad_signature, ...) and transport (http, ws)',
        labelNames: ['reason', 'transport'] as const,
        registers,
      }),
      successes: new Counter({
        name: 'gateway_auth_success_total',
        help: 'Accepted credentials by method (jwt, api_key, admin_key)',
        labelNames: ['method'] as const,
        registers,
      }),
    },
    admission: {
      rejections: new Counter({
        name: 'gateway_rate_limited_total',
        help: 'Calls refused by the admission layer, by kind (requests, tokens, budget, ws_connections, ws_messages)',
        labelNames: ['kind'] as const,
        registers,
      }),
      limiterErrors: new Counter({
        name: 'gateway_limiter_errors_total',
        help: "Limiter store failures by operation (admit, charge, give_back, connection); admit and connection refuse the call (fail closed)",
        labelNames: ['operation'] as const,
        registers,
      }),
      leases: new Counter({
        name: 'gateway_admission_leases_total',
        help: "Round trips to the limiter's Redis for requests per minute: a block of a caller's requests leased (taken), a lapsed lease's unused requests given back (returned, per lease)",
        labelNames: ['event'] as const,
        registers,
      }),
      latency: new Histogram({
        name: 'gateway_admission_seconds',
        help: 'Time to admit a chat request (rate limit, token and budget checks)',
        buckets: FAST_BUCKETS,
        registers,
      }),
    },
    resumes: new Counter({
      name: 'ai_resumes_total',
      help: 'Resumes of a streamed answer (WebSocket resume, SSE Last-Event-ID) by outcome: ok, expired (past the window or unknown), refused (not the owner)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    sessions: {
      fanout: new Counter({
        name: 'session_fanout_messages_total',
        help: 'Collaboration session messages: published on the bus by this gateway, and delivered to its member sockets',
        labelNames: ['direction'] as const,
        registers,
      }),
      members: new Gauge({
        name: 'session_members_connected',
        help: "Member sockets of collaboration sessions connected to this gateway",
        registers,
      }),
      churn: new Counter({
        name: 'session_presence_changes_total',
        help: 'Presence changes of collaboration sessions seen by this gateway: join, leave (socket closed), timeout (a gateway stopped renewing)',
        labelNames: ['change'] as const,
        registers,
      }),
      refused: new Counter({
        name: 'session_turns_refused_total',
        help: 'Collaboration turns refused, by reason (session_busy: another member\'s turn was being answered)',
        labelNames: ['reason'] as const,
        registers,
      }),
    },
    wsCloses: new Counter({
      name: 'websocket_closes_total',
      help: 'WebSockets closed, by reason (client, send_buffer_full, token_expired, shutdown, heartbeat)',
      labelNames: ['reason'] as const,
      registers,
    }),
    bus: createBusMetrics(registry),
    ws: createWebSocketMetrics(registry),
    health: createServiceHealthMetric(registry),
  };
}
export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
