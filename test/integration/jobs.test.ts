import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhook, WebhookHeaders, type JobEvent } from '@actionedx/shared';
import { expositionProblems } from '../monitoring/exposition.js';
import {
  cancelJob,
  counterSum,
  getJob,
  mockCompletions,
  readSse,
  runToExit,
  sampleDocument,
  startRedis,
  startService,
  startStack,
  submitJob,
  until,
  waitForJob,
  WsClient,
  type ServiceProcess,
  type Stack,
} from '@actionedx/testkit';

/**
 * Background jobs as deployed: a gateway (and a second replica), two job workers (orchestrators with ROLE=jobs),
 * mock-llm, a nats-server of the test's own and a queue Redis of its own (noeviction). Short locks so that a
 * killed worker's job is recovered in a few seconds.
 */

const OWNER = 'ms.rivera@school.example';
const SECRET = 'integration-webhook-secret';
const slow = (stack: Stack, config: Record<string, unknown>) =>
  fetch(`${stack.mockLlm.url}/mock/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(config) });
const fast = (stack: Stack) => slow(stack, { ttft_ms: 0, tokens_per_second: 0, fault: 'none' });
const batch = (n: number, tag: string) => ({
  kind: 'batch_alignment',
  use_cache: false,
  input: { title: `Term plans ${tag}`, items: Array.from({ length: n }, (_, i) => ({ id: `lesson-${i + 1}`, text: `Lesson ${i + 1} (${tag}): fractions with pizzas.` })) },
});
const metricsOf = async (s: ServiceProcess) => (await fetch(`${s.opsUrl}/metrics`)).text();
const sumOver = async (services: ServiceProcess[], name: string, filter?: (labels: string) => boolean) =>
  (await Promise.all(services.map(async (s) => counterSum(await metricsOf(s), name, filter)))).reduce((a, b) => a + b, 0);

describe('background jobs on a distributed stack', () => {
  let queue: Awaited<ReturnType<typeof startRedis>>;
  let stack: Stack;
  let gateway2: ServiceProcess;
  const workers = (): ServiceProcess[] => stack.orchestrators.filter((o) => o.proc.exitCode === null && o.proc.signalCode === null);

  beforeAll(async () => {
    queue = await startRedis(undefined, { args: ['--maxmemory-policy', 'noeviction'] });
    const jobsEnv = { QUEUE_REDIS_URL: queue.url, JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '200', JOB_WEBHOOK_BACKOFF_MS: '200' };
    stack = await startStack({ auth: 'open', 
      orchestrators: 2,
      orchestratorEnv: {
        ...jobsEnv,
        ROLE: 'jobs',
        JOB_CONCURRENCY: '1',
        JOB_LOCK_MS: '3000',
        JOB_STALLED_INTERVAL_MS: '1000',
        JOB_WEBHOOK_SECRET: SECRET,
      },
      gatewayEnv: jobsEnv,
    });
    gateway2 = await startService('gateway', { NATS_URL: stack.nats.url, REDIS_URL: stack.redisUrl, HOST: '127.0.0.1', AUTH_MODE: 'open', ...jobsEnv }, { label: 'gateway-2' });
    await until(async () => (await fetch(`${gateway2.url}/readyz`)).status === 200, 10_000, 'gateway-2 ready');
  }, 60_000);
  afterAll(async () => {
    await gateway2?.stop(2000);
    await stack?.stop();
    await queue?.stop();
  });

  it('runs a document audit to completion, its progress in order over WebSocket (another gateway) and SSE', async () => {
    const ws = await WsClient.open(`${gateway2.url.replace('http', 'ws')}/ws/assistant/jobs-1?user_id=${encodeURIComponent(OWNER)}`);
    try {
      const submitted = await submitJob(stack.url, OWNER, { kind: 'document_audit', use_cache: false, input: { title: 'School improvement plan', document: sampleDocument(3, 3_000) } });
      expect(submitted.status).toBe(202);
      const id = submitted.body.id;
      expect(submitted.headers.get('location')).toBe(`/api/jobs/${id}`);
      const sseEvents: JobEvent[] = [];
      const sse = fetch(`${stack.url}/api/jobs/${id}/events?user_id=${encodeURIComponent(OWNER)}`).then((res) =>
        readSse(res.body as unknown as AsyncIterable<Uint8Array>, (_event, data) => sseEvents.push(JSON.parse(data) as JobEvent)),
      );
      const done = await ws.next((m) => m.job_id === id && m.type === 'job_done', 20_000);
      await sse;
      const wsEvents = ws.messages.filter((m) => m.job_id === id) as JobEvent[];
      for (const events of [wsEvents, sseEvents]) {
        const seqs = events.map((e) => e.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect(new Set(seqs).size).toBe(seqs.length);
        const percents = events.flatMap((e) => (e.type === 'job_progress' && e.state === 'active' ? [e.percent] : []));
        expect(percents).toEqual([...percents].sort((a, b) => a - b));
        expect(percents.at(-1)).toBe(100);
        expect(events.at(-1)!.type).toBe('job_done');
      }
      // SSE replays from the start: it has every event the job published.
      expect(sseEvents.map((e) => e.seq)).toEqual(Array.from({ length: done.seq }, (_, i) => i + 1));
      const job = (await getJob(stack.url, OWNER, id)).body;
      expect(job).toMatchObject({ state: 'completed', steps_done: 4, steps_total: 4, error: null, progress: { percent: 100 } });
      expect(job.result!.parts).toHaveLength(3);
      expect(done.summary).toBe(job.result!.summary);
      expect(job.usage.total_tokens).toBeGreaterThan(0);
      // Another user sees nothing of it, on any replica.
      for (const base of [stack.url, gateway2.url]) expect((await getJob(base, 'someone.else', id)).status).toBe(404);
      expect((await cancelJob(stack.url, OWNER, id)).body).toMatchObject({ error: { code: 'job_finished' } });
      expect((await getJob(gateway2.url, OWNER, id)).status).toBe(200);
      // A reconnecting SSE client gets only what it missed.
      const resumed: JobEvent[] = [];
      const res = await fetch(`${gateway2.url}/api/jobs/${id}/events?user_id=${encodeURIComponent(OWNER)}`, { headers: { 'last-event-id': String(done.seq - 1) } });
      await readSse(res.body as unknown as AsyncIterable<Uint8Array>, (_e, data) => resumed.push(JSON.parse(data) as JobEvent));
      expect(resumed.map((e) => e.seq)).toEqual([done.seq]);
    } finally {
      ws.close();
    }
  });

  it('cancels: a queued job at once, a running one by stopping its model call', async () => {
    // Two workers, one job each at a time: a third job waits in the queue.
    await slow(stack, { tokens_per_second: 20 });
    const mockStats = async () => (await (await fetch(`${stack.mockLlm.url}/mock/stats`)).json()) as { client_disconnects: number; in_flight: number };
    const disconnects = async () => (await mockStats()).client_disconnects;
    const ws = await WsClient.open(`${stack.wsUrl}/ws/assistant/jobs-2?user_id=${encodeURIComponent(OWNER)}`);
    try {
      const a = (await submitJob(stack.url, OWNER, batch(3, 'a'))).body.id;
      const b = (await submitJob(stack.url, OWNER, batch(3, 'b'))).body.id;
      for (const id of [a, b]) await waitForJob(stack.url, OWNER, id, (j) => j.state === 'active', 10_000);
      const c = (await submitJob(stack.url, OWNER, batch(3, 'c'))).body.id;
      const cancelledQueued = await cancelJob(stack.url, OWNER, c);
      expect(cancelledQueued.status).toBe(200);
      expect(cancelledQueued.body).toMatchObject({ state: 'cancelled', steps_done: 0 });

      // Both running jobs are in a model call now: the cancel has one to stop.
      await until(async () => (await mockStats()).in_flight >= 2, 5_000, 'both jobs streaming');
      const before = await disconnects();
      const cancelling = await cancelJob(gateway2.url, OWNER, a);
      expect([200, 202]).toContain(cancelling.status);
      const failed = await ws.next((m) => m.job_id === a && m.type === 'job_failed', 10_000);
      expect(failed).toMatchObject({ state: 'cancelled', error: { code: 'cancelled', retryable: false } });
      await until(async () => (await disconnects()) > before, 5_000, 'mock-llm to see the model call aborted');
      const job = await waitForJob(stack.url, OWNER, a, (j) => j.state === 'cancelled');
      expect(job.steps_done).toBeLessThan(3);
      expect((await cancelJob(stack.url, OWNER, a)).status).toBe(200);
      await cancelJob(stack.url, OWNER, b);
      await waitForJob(stack.url, OWNER, b);
    } finally {
      ws.close();
      await fast(stack);
    }
  });

  it('on a provider 429 the queue waits (no attempt used up) and the job completes once the provider recovers', async () => {
    await slow(stack, { fault: 'rate_limit', fault_rate: 1 });
    let id = '';
    try {
      id = (await submitJob(stack.url, OWNER, batch(1, 'rl'))).body.id;
      // More 429s than JOB_ATTEMPTS (2): a failure would have ended the job by now. The mock's retry-after is
      // 1 s and the pause holds every worker, so three tries take two seconds at least.
      const started = Date.now();
      await until(async () => (await sumOver(workers(), 'jobs_retries_total', (l) => l.includes('reason="rate_limited"'))) >= 3, 15_000, 'three rate-limited tries');
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
      const waiting = (await getJob(stack.url, OWNER, id)).body;
      expect(waiting.state).toBe('queued');
      expect(waiting.progress.message).toContain('rate limiting');
    } finally {
      await fast(stack);
    }
    const job = await waitForJob(stack.url, OWNER, id);
    expect(job).toMatchObject({ state: 'completed', error: null });
  });

  it('delivers a signed webhook when a job ends, retrying until the receiver takes it', async () => {
    const deliveries: { status: number; body: string; headers: IncomingMessage['headers'] }[] = [];
    const receiver: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const status = deliveries.length === 0 ? 500 : 204;
        deliveries.push({ status, body, headers: req.headers });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/jobs`;
      const refused = await submitJob(stack.url, OWNER, { ...batch(1, 'hook'), webhook_url: 'https://hooks.attacker.example/x' });
      expect(refused.status).toBe(400);
      const id = (await submitJob(stack.url, OWNER, { ...batch(1, 'hook'), webhook_url: url })).body.id;
      await waitForJob(stack.url, OWNER, id, (j) => j.webhook?.state === 'delivered', 15_000);
      expect(deliveries.map((d) => d.status)).toEqual([500, 204]);
      for (const d of deliveries) {
        expect(verifyWebhook(SECRET, d.headers[WebhookHeaders.signature] as string, d.body)).toBe(true);
        expect(verifyWebhook('a-wrong-secret-of-sorts', d.headers[WebhookHeaders.signature] as string, d.body)).toBe(false);
        expect(d.headers[WebhookHeaders.event]).toBe('job.completed');
        expect(d.headers[WebhookHeaders.delivery]).toBe(`${id}.job.completed`);
        expect(JSON.parse(d.body)).toMatchObject({ id: `${id}.job.completed`, event: 'job.completed', job: { id, state: 'completed' } });
      }
      expect((await getJob(stack.url, OWNER, id)).body.webhook).toEqual({ state: 'delivered', attempts: 2 });
    } finally {
      receiver.close();
    }
  });

  it('exports the job metrics the dashboards and alerts read, on gateways and job workers', async () => {
    expect(expositionProblems('gateway', await metricsOf(stack.gateway))).toEqual([]);
    for (const w of workers()) expect(expositionProblems('job-worker', await metricsOf(w))).toEqual([]);
    const text = await metricsOf(stack.gateway);
    expect(counterSum(text, 'jobs_submitted_total', (l) => l.includes('outcome="accepted"'))).toBeGreaterThan(0);
    expect(text).toMatch(/jobs_queue_depth\{[^}]*queue="actionedx-jobs"/);
  });

  it('finishes the job of a SIGKILLed worker on the other one, without paying again for the steps already done', async () => {
    await slow(stack, { tokens_per_second: 100 });
    try {
      const completionsBefore = await mockCompletions(stack.mockLlm.url);
      const steps = 6;
      const id = (await submitJob(stack.url, OWNER, batch(steps, 'kill'))).body.id;
      await waitForJob(stack.url, OWNER, id, (j) => j.steps_done >= 2, 15_000);
      let victim: ServiceProcess | undefined;
      for (const w of workers()) if (counterSum(await metricsOf(w), 'jobs_active') > 0) victim = w;
      expect(victim).toBeDefined();
      const doneAtKill = (await getJob(stack.url, OWNER, id)).body.steps_done;
      victim!.kill('SIGKILL');
      const job = await waitForJob(stack.url, OWNER, id, undefined, 25_000);
      expect(job).toMatchObject({ state: 'completed', steps_done: steps, error: null });
      expect(job.attempts).toBeGreaterThanOrEqual(2);
      // At most the one step that was running when the worker died is paid for twice.
      const calls = (await mockCompletions(stack.mockLlm.url)) - completionsBefore;
      expect(calls).toBeGreaterThanOrEqual(steps);
      expect(calls).toBeLessThanOrEqual(steps + 1);
      const survivor = workers()[0]!;
      const text = await metricsOf(survivor);
      expect(counterSum(text, 'jobs_steps_skipped_total')).toBeGreaterThanOrEqual(doneAtKill);
      expect(counterSum(text, 'jobs_retries_total', (l) => l.includes('reason="stalled"'))).toBeGreaterThanOrEqual(1);
    } finally {
      await fast(stack);
    }
  });

  it('answers 503 at once when the queue Redis is down', async () => {
    await queue.stop();
    await until(async () => (await submitJob(stack.url, OWNER, batch(1, 'down'))).status === 503, 5_000, 'the gateway to notice');
    const started = Date.now();
    const res = await submitJob(gateway2.url, OWNER, batch(1, 'down'));
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ error: { code: 'jobs_unavailable', retryable: true } });
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('a job worker on a Redis that evicts keys', () => {
  it('refuses to start, with a fatal line that says why and what to do', async () => {
    const evicting = await startRedis(undefined, { args: ['--maxmemory-policy', 'allkeys-lru'] });
    try {
      const { code, logs } = await runToExit('orchestrator', {
        NATS_URL: 'nats://127.0.0.1:1',
        OPENAI_BASE_URL: 'http://127.0.0.1:1/v1',
        ROLE: 'jobs',
        QUEUE_REDIS_URL: evicting.url,
      });
      expect(code).toBe(1);
      const fatal = logs.find((l) => l.level === 'fatal');
      expect(fatal?.msg).toMatch(/refusing to take jobs: the queue Redis evicts keys \(maxmemory-policy allkeys-lru\)/);
      expect(String(fatal?.msg)).toContain('noeviction');
    } finally {
      await evicting.stop();
    }
  });
});
