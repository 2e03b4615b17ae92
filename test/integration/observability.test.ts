import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, authHeaders, counterSum, freePort, getJson, mintToken, postJson, startStack, until, waitForPort, WsClient, type Stack } from '@actionedx/testkit';
import { expositionProblems } from '../monitoring/exposition.js';

/** The seed's metric names (DESIGN.md section 5) and the service whose code path records each. */
const SEED_METRICS = {
  orchestrator: [
    'ai_requests_total',
    'ai_request_latency_seconds',
    'ai_tokens_used_total',
    'ai_cost_usd_total',
    'ai_response_quality_score',
    'cache_operations_total',
    'cache_keys_total',
    'cache_size_bytes',
    'db_operations_total',
    'db_operation_latency_seconds',
    'service_health',
  ],
  gateway: ['websocket_active_connections', 'websocket_messages_total', 'websocket_errors_total', 'service_health'],
} as const;

const metricsOf = async (service: { opsUrl: string }) => (await fetch(`${service.opsUrl}/metrics`)).text();
/** Samples of a metric (any suffix) in exposition text. */
const samples = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(name) && !l.startsWith('#'));

describe('observability: metrics, request tracing, a real Prometheus', () => {
  let stack: Stack;
  const user = `obs-user-${randomUUID().slice(0, 8)}`;
  const secret = `prompt-text-${randomUUID()}`;
  const rid = `obs-${randomUUID()}`;

  beforeAll(async () => {
    stack = await startStack({ orchestrators: 2 });
    // One of every event: a chat request, a cache hit, a WebSocket exchange with a bad frame, a store write.
    const body = { user_id: user, message: `Tell me about ${secret}`, session_id: 'obs-session' };
    const auth = await authHeaders(user);
    const first = await postJson(`${stack.url}/api/assistant/chat`, body, { 'x-request-id': rid, traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', ...auth });
    expect(first.status).toBe(200);
    await postJson(`${stack.url}/api/assistant/chat`, { ...body, session_id: undefined }, auth);
    await postJson(`${stack.url}/api/assistant/chat`, { ...body, session_id: undefined }, auth);
    // And one refused credential, so the auth failure counter has a series.
    await postJson(`${stack.url}/api/assistant/chat`, body, { authorization: 'Bearer junk' });
    const ws = await WsClient.open(`${stack.wsUrl}/ws/assistant/obs-ws-${randomUUID().slice(0, 8)}?user_id=${user}&access_token=${await mintToken(user)}`);
    await ws.next((m) => m.type === 'connected');
    ws.send('not json');
    await ws.next((m) => m.type === 'error');
    ws.send({ message: `ws ${secret}` });
    await ws.next((m) => m.type === 'response');
    ws.close();
    await getJson(`${stack.url}/api/cache/stats`, adminHeaders());
    await getJson(`${stack.url}/api/health`);
    for (const o of stack.orchestrators) await getJson(`${o.url}/api/health`);
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('follows one request id through every service: logs and answer headers', async () => {
    const first = stack.gateway.logs.filter((l) => l.request_id === rid);
    expect(first.length).toBeGreaterThan(0);
    const orch = stack.orchestrators.flatMap((o) => o.logs).filter((l) => l.request_id === rid);
    expect(orch.length).toBeGreaterThan(0);
    await until(() => stack.mockLlm.logs.some((l) => l.request_id === rid), 5000, 'mock-llm log line with the request id');
    // The trace continues from the client's traceparent in every service.
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    expect(orch.some((l) => String(l.traceparent).includes(trace))).toBe(true);
    expect(stack.mockLlm.logs.some((l) => l.request_id === rid && String(l.traceparent).includes(trace))).toBe(true);
  });

  it('records each seed metric in the service whose code path it names', async () => {
    const gw = await metricsOf(stack.gateway);
    const orch = (await Promise.all(stack.orchestrators.map((o) => metricsOf(o)))).join('\n');
    for (const name of SEED_METRICS.orchestrator) expect(samples(orch, name).length, name).toBeGreaterThan(0);
    for (const name of SEED_METRICS.gateway) expect(samples(gw, name).length, name).toBeGreaterThan(0);
    expect(counterSum(orch, 'ai_requests_total', (l) => l.includes('status="cached"'))).toBeGreaterThan(0);
    expect(counterSum(orch, 'cache_operations_total', (l) => l.includes('operation="get"') && l.includes('result="hit"'))).toBeGreaterThan(0);
    expect(counterSum(orch, 'db_operations_total', (l) => l.includes('operation="append"'))).toBeGreaterThan(0);
    expect(counterSum(gw, 'websocket_messages_total', (l) => l.includes('direction="inbound"'))).toBeGreaterThan(0);
    expect(counterSum(gw, 'websocket_messages_total', (l) => l.includes('direction="outbound"'))).toBeGreaterThan(0);
    expect(counterSum(gw, 'websocket_errors_total')).toBeGreaterThan(0);
    expect(counterSum(orch, 'ai_tokens_used_total')).toBeGreaterThan(0);
    expect(counterSum(orch, 'ai_cost_usd_total')).toBeGreaterThan(0);
  });

  it('puts no user id, session id or prompt text in any label', async () => {
    const texts = [await metricsOf(stack.gateway), await metricsOf(stack.mockLlm), ...(await Promise.all(stack.orchestrators.map((o) => metricsOf(o))))];
    for (const t of texts) {
      expect(t).not.toContain(user);
      expect(t).not.toContain(secret);
      expect(t).not.toContain('obs-session');
      expect(t).not.toContain('obs-ws');
      expect(t).not.toContain(rid);
    }
  });

  it('exports what the dashboards and alert rules query', async () => {
    expect(expositionProblems('gateway', await metricsOf(stack.gateway))).toEqual([]);
    expect(expositionProblems('mock-llm', await metricsOf(stack.mockLlm))).toEqual([]);
    for (const o of stack.orchestrators) expect(expositionProblems('orchestrator', await metricsOf(o))).toEqual([]);
  });

  describe('scraped by a real Prometheus', () => {
    let prom: ChildProcess | undefined;
    let promUrl = '';
    let dir = '';
    beforeAll(async () => {
      const port = await freePort();
      dir = mkdtempSync(join(tmpdir(), 'actionedx-prom-'));
      const target = (u: string) => u.replace('http://', '');
      const config = [
        'global:',
        '  scrape_interval: 1s',
        'scrape_configs:',
        `  - job_name: gateway`,
        `    static_configs: [{ targets: ['${target(stack.gateway.opsUrl)}'] }]`,
        `  - job_name: orchestrator`,
        `    static_configs: [{ targets: [${stack.orchestrators.map((o) => `'${target(o.url)}'`).join(', ')}] }]`,
        `  - job_name: mock-llm`,
        `    static_configs: [{ targets: ['${target(stack.mockLlm.url)}'] }]`,
        '',
      ].join('\n');
      writeFileSync(join(dir, 'prometheus.yml'), config);
      const bin = process.env.PROMETHEUS ?? '/usr/bin/prometheus';
      prom = spawn(bin, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
      promUrl = `http://127.0.0.1:${port}`;
      await waitForPort(port, 20_000);
    }, 30_000);
    afterAll(() => {
      prom?.kill('SIGKILL');
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('finds every target up and every seed metric in its store', async () => {
      await until(
        async () => {
          const t = (await getJson(`${promUrl}/api/v1/targets`)).body;
          const active = t?.data?.activeTargets ?? [];
          return active.length === 2 + stack.orchestrators.length && active.every((a: { health: string }) => a.health === 'up');
        },
        20_000,
        'every target up',
      );
      const wanted = [...new Set([...SEED_METRICS.orchestrator, ...SEED_METRICS.gateway])];
      await until(
        async () => {
          const names: string[] = (await getJson(`${promUrl}/api/v1/label/__name__/values`)).body?.data ?? [];
          return wanted.every((w) => names.some((n) => n === w || n.startsWith(`${w}_`)));
        },
        20_000,
        'the seed metrics in Prometheus',
      );
      const q = await getJson(`${promUrl}/api/v1/query?query=${encodeURIComponent('sum by (service) (ai_requests_total)')}`);
      expect(q.body.data.result.length).toBeGreaterThan(0);
      expect(q.body.data.result[0].metric.service).toBe('orchestrator');
    }, 60_000);
  });
});
