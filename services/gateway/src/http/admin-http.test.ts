import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Subjects,
  createAiMetrics,
  createMetricsRegistry,
  createServiceHealthMetric,
  encodeJson,
  type CacheHealth,
  type CacheStats,
} from '@actionedx/shared';
import {
  FakeAdminEndpoint,
  FakeWorker,
  answerWith,
  sampleValue,
  startTestGateway,
  type TestGateway,
} from '@actionedx/testkit';

/** The version the health report must carry: the gateway package's own. */
const GATEWAY_PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

let gw: TestGateway;
const endpoints: Array<{ stop(): void }> = [];

const stats: CacheStats = {
  status: 'connected',
  backend: 'redis',
  hits: 7,
  misses: 2,
  coalesced: 1,
  hit_rate: 0.7,
  total_keys: 4,
  keys_by_task_type: { strategy_audit: 4 },
  memory_used_bytes: 1024,
};
const cacheHealth: CacheHealth = { status: 'healthy', backend: 'redis', latency_ms: 0.4, breaker: 'closed' };

const serve = (subject: string, reply: ConstructorParameters<typeof FakeAdminEndpoint>[2]): FakeAdminEndpoint => {
  const e = new FakeAdminEndpoint(gw.bus, subject, reply);
  endpoints.push(e);
  return e;
};

const json = async (res: Response): Promise<any> => res.json();

beforeEach(async () => {
  gw = await startTestGateway();
});

afterEach(async () => {
  for (const e of endpoints.splice(0)) e.stop();
  await gw.close();
});

describe('cache administration', () => {
  it('forwards GET /api/cache/stats and GET /api/cache/health with the request id', async () => {
    const s = serve(Subjects.cacheStats, () => ({ ok: true, data: stats }));
    serve(Subjects.cacheHealth, () => ({ ok: true, data: cacheHealth }));
    const res = await fetch(`${gw.baseUrl}/api/cache/stats`, { headers: { 'x-request-id': 'stats-1' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(stats);
    expect(s.requests[0]!.headers['x-request-id']).toBe('stats-1');
    expect(s.requests[0]!.headers.traceparent).toBe(res.headers.get('traceparent'));
    expect(await json(await fetch(`${gw.baseUrl}/api/cache/health`))).toEqual(cacheHealth);
  });

  it('accepts the patterns an operator needs', async () => {
    const inv = serve(Subjects.cacheInvalidate, (body) => ({
      ok: true,
      data: { pattern: (body as { pattern: string }).pattern, deleted: 0 },
    }));
    for (const pattern of ['ai_cache:*', 'ai_cache:collaboration:*', 'ai_cache:strategy_audit:ab12?f*']) {
      const res = await fetch(`${gw.baseUrl}/api/cache/invalidate?pattern=${encodeURIComponent(pattern)}`, {
        method: 'POST',
      });
      expect(res.status, pattern).toBe(200);
    }
    expect(inv.requests).toHaveLength(3);
  });

  it('forwards an invalidation by pattern and by task type', async () => {
    const inv = serve(Subjects.cacheInvalidate, (body) => ({
      ok: true,
      data: { pattern: (body as { pattern?: string }).pattern ?? 'ai_cache:strategy_audit:*', deleted: 2 },
    }));
    const a = await fetch(`${gw.baseUrl}/api/cache/invalidate?pattern=${encodeURIComponent('ai_cache:*')}`, {
      method: 'POST',
    });
    expect(a.status).toBe(200);
    expect(await a.json()).toEqual({ pattern: 'ai_cache:*', deleted: 2 });
    await fetch(`${gw.baseUrl}/api/cache/invalidate?task_type=strategy_audit`, { method: 'POST' });
    expect(inv.requests.map((r) => r.body)).toEqual([{ pattern: 'ai_cache:*' }, { task_type: 'strategy_audit' }]);
  });

  it("reads the seed's own call, ?pattern=*, as every answer (ai_cache:*)", async () => {
    const inv = serve(Subjects.cacheInvalidate, (body) => ({
      ok: true,
      data: { pattern: (body as { pattern: string }).pattern, deleted: 3 },
    }));
    const res = await fetch(`${gw.baseUrl}/api/cache/invalidate?pattern=*`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ pattern: 'ai_cache:*', deleted: 3 });
    expect(inv.requests.map((r) => r.body)).toEqual([{ pattern: 'ai_cache:*' }]);
  });

  it('refuses patterns outside ai_cache: and bad parameters without asking any worker', async () => {
    const inv = serve(Subjects.cacheInvalidate, () => ({ ok: true, data: { pattern: 'x', deleted: 0 } }));
    const call = (qs: string) => fetch(`${gw.baseUrl}/api/cache/invalidate?${qs}`, { method: 'POST' });
    const bad = ['ws_session:*', 'ai_cache', 'ai_cache:', `ai_cache:${'x'.repeat(260)}`, 'ai_cache:a b', 'ai_cache:a.b', '**', ''];
    for (const pattern of [...bad, 'ai_cache:[a-z]*', 'ai_cache:\\x', 'xai_cache:*']) {
      const res = await call(`pattern=${encodeURIComponent(pattern)}`);
      expect(res.status).toBe(400);
      expect((await json(res)).error.code).toBe('invalid_pattern');
    }
    expect((await json(await call('task_type=poetry'))).error.code).toBe('unknown_task_type');
    expect((await json(await call(''))).error.code).toBe('validation_failed');
    expect((await json(await call('pattern=ai_cache:a&pattern=ai_cache:b'))).error.code).toBe('validation_failed');
    expect(inv.requests).toHaveLength(0);
  });

  it('maps a worker error reply to HTTP through the error catalog', async () => {
    serve(Subjects.cacheStats, () => ({
      ok: false,
      error: { code: 'cache_unavailable', message: 'The cache is unavailable.', retryable: true },
    }));
    const res = await fetch(`${gw.baseUrl}/api/cache/stats`);
    expect(res.status).toBe(503);
    expect((await json(res)).error).toMatchObject({ code: 'cache_unavailable', retryable: true });
  });

  it('answers 503 no_workers when no orchestrator listens, 500 internal for a malformed reply', async () => {
    const res = await fetch(`${gw.baseUrl}/api/cache/health`);
    expect(res.status).toBe(503);
    expect((await json(res)).error.code).toBe('no_workers');
    serve(Subjects.cacheStats, () => encodeJson({ whatever: true }));
    const bad = await fetch(`${gw.baseUrl}/api/cache/stats`);
    expect(bad.status).toBe(500);
    expect((await json(bad)).error).toEqual({
      code: 'internal',
      message: 'Internal error.',
      retryable: true,
      request_id: bad.headers.get('x-request-id'),
    });
  });
});

describe('health', () => {
  it('is healthy with a worker answering pings, with every dependency; worker ids (host names) only on the ops port', async () => {
    serve(Subjects.workerPing, () => ({ ok: true, data: { worker_id: 'host-7.internal-123', in_flight: 0 } }));
    const expected = {
      status: 'healthy',
      service: 'gateway',
      version: GATEWAY_PACKAGE.version,
      uptime_s: expect.any(Number),
      dependencies: {
        nats: { status: 'connected', kind: 'in-process' },
        redis: { status: 'not_configured' },
        orchestrators: { status: 'reachable', workers_reachable: true, latency_ms: expect.any(Number) },
      },
    };
    const res = await fetch(`${gw.baseUrl}/api/health`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject(expected);
    expect(text).not.toContain('host-7');
    expect(JSON.parse(text).dependencies.orchestrators).not.toHaveProperty('worker_id');
    const full = await json(await fetch(`${gw.opsUrl}/api/health`));
    expect(full).toMatchObject(expected);
    expect(full.dependencies.orchestrators.worker_id).toBe('host-7.internal-123');
  });

  it('is degraded (200) with no orchestrator, unhealthy (503) without a bus', async () => {
    const res = await fetch(`${gw.baseUrl}/api/health`);
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({
      status: 'degraded',
      dependencies: { orchestrators: { status: 'unreachable', workers_reachable: false, latency_ms: null } },
    });
    await gw.bus.close();
    const down = await fetch(`${gw.baseUrl}/api/health`);
    expect(down.status).toBe(503);
    expect(await json(down)).toMatchObject({ status: 'unhealthy', dependencies: { nats: { status: 'closed' } } });
  });

  it('/healthz is 200 while serving; /readyz is 200, then 503 when the bus is gone', async () => {
    expect((await fetch(`${gw.baseUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${gw.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
    await gw.bus.close();
    const notReady = await fetch(`${gw.baseUrl}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: 'not_ready', reason: 'bus_not_connected' });
    expect((await fetch(`${gw.baseUrl}/healthz`)).status).toBe(200);
  });
});

describe('metrics and stats', () => {
  it('serves Prometheus text on /metrics of the ops port and /api/metrics, and the figures move; no /metrics on the public port', async () => {
    const w = new FakeWorker(gw.bus, { script: answerWith(['a', 'b']) });
    const before = await (await fetch(`${gw.baseUrl}/api/metrics`)).text();
    expect(before).toContain('# TYPE gateway_requests_in_flight gauge');
    expect(before).toContain('# TYPE websocket_active_connections gauge');
    const res = await fetch(`${gw.baseUrl}/api/assistant/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: 'u', message: 'hi' }),
    });
    expect(res.status).toBe(200);
    expect((await fetch(`${gw.baseUrl}/metrics`)).status).toBe(404);
    const r = await fetch(`${gw.opsUrl}/metrics`);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    const after = await r.text();
    const chat = { method: 'POST', route: '/api/assistant/chat' };
    expect(sampleValue(after, 'http_requests_total', { ...chat, status: '200', service: 'gateway' })).toBe(1);
    expect(sampleValue(after, 'http_request_duration_seconds_count', chat)).toBe(1);
    expect(sampleValue(after, 'bus_request_roundtrip_seconds_count', { subject: 'chat.v1.request' })).toBe(1);
    expect(sampleValue(after, 'bus_frames_total', { type: 'chunk', direction: 'received' })).toBe(2);
    expect(sampleValue(after, 'gateway_chat_outcomes_total', { outcome: 'done' })).toBe(1);
    expect(sampleValue(after, 'gateway_requests_in_flight')).toBe(0);
    w.stop();
  });

  it("also serves another registry's families (embedded mode), each with its own labels, none twice", async () => {
    const other = createMetricsRegistry('orchestrator', { defaultMetrics: false });
    createAiMetrics(other).requests.inc({ model: 'm', task_type: 'collaboration', status: 'success' });
    createServiceHealthMetric(other).set({ component: 'cache' }, 1); // also a gateway family
    const g = await startTestGateway({}, { metricsRegistry: other });
    try {
      const text = await (await fetch(`${g.opsUrl}/metrics`)).text();
      expect(sampleValue(text, 'ai_requests_total', { service: 'orchestrator', status: 'success' })).toBe(1);
      expect(text).toContain('service="gateway"');
      const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
      expect(new Set(types).size).toBe(types.length);
      expect(types.filter((t) => t.startsWith('# TYPE service_health '))).toHaveLength(1);
    } finally {
      await g.close();
    }
  });

  it('GET /api/websocket/stats reports connections and sessions', async () => {
    const res = await fetch(`${gw.baseUrl}/api/websocket/stats`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      active_connections: 0,
      total_connections: 0,
      messages_in: 0,
      messages_out: 0,
      errors: 0,
      sessions: [],
      sessions_truncated: false,
    });
  });
});
