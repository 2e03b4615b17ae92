import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  LATENCY_BUCKETS,
  createBusMetrics,
  createServiceHealthMetric,
  createWebSocketMetrics,
} from '@actionedx/shared';

/** Every metric the gateway exports; routes are labelled by pattern, never by raw URL. */
export function createGatewayMetrics(registry: Registry) {
  const registers = [registry];
  return {
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
    bus: createBusMetrics(registry),
    ws: createWebSocketMetrics(registry),
    health: createServiceHealthMetric(registry),
  };
}
export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
