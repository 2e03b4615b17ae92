import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, createMetricsRegistry, InProcessBus, JOB_LIMITS, type JobEvent } from '@actionedx/shared';
import { freePort, startRedis, TEST_TIMERS, TestSocket } from '@actionedx/testkit';
import { createGateway, type Gateway } from '../app.js';
import { loadGatewayConfig } from '../config.js';
import { openJobDesk, type OpenedJobDesk } from './open-job-desk.js';

/**
 * The job endpoints of one gateway on the in-process bus, against real queue Redis servers of the test's own
 * (no job worker: what the gateway alone decides). The worker side is in test/integration/jobs.test.ts.
 */

const logger = createLogger({ service: 'gateway-test', version: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false });

interface JobsGateway {
  baseUrl: string;
  wsUrl: string;
  gateway: Gateway;
  desk: OpenedJobDesk | undefined;
  close(): Promise<void>;
}

/** A gateway wired as main.ts wires it: with a job desk on `queueRedisUrl`, or none. */
async function gatewayWithJobs(queueRedisUrl: string | undefined): Promise<JobsGateway> {
  const bus = new InProcessBus();
  const registry = createMetricsRegistry('gateway', { defaultMetrics: false });
  const config = {
    ...loadGatewayConfig({ NODE_ENV: 'test', AUTH_MODE: 'open', OPS_PORT: '0', ...(queueRedisUrl ? { QUEUE_REDIS_URL: queueRedisUrl } : {}) }),
    ...TEST_TIMERS,
    port: 0,
    host: '127.0.0.1',
    shutdownGraceMs: 200,
  };
  const desk = queueRedisUrl ? openJobDesk(config.jobs, { bus, logger, name: 'test' }) : undefined;
  const gateway = createGateway({ bus, config, logger, registry, ...(desk ? { jobs: desk.desk } : {}) });
  const { port } = await gateway.listen();
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    gateway,
    desk,
    async close() {
      await gateway.close({ graceMs: 100 });
      await desk?.close();
      await bus.close();
    },
  };
}

const post = (g: JobsGateway, body: unknown) =>
  fetch(`${g.baseUrl}/api/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const json = async (res: Response) => ({ status: res.status, body: (await res.json()) });
const batch = (n: number, extra: Record<string, unknown> = {}) => ({
  user_id: 'ms.rivera@school.example',
  kind: 'batch_alignment',
  input: { items: Array.from({ length: n }, (_, i) => ({ id: `lesson-${i + 1}`, text: `Lesson plan ${i + 1}: fractions with pizzas.` })) },
  ...extra,
});

describe('jobs without a queue Redis (the embedded default)', () => {
  it('answers 503 jobs_unavailable, saying what to configure', async () => {
    const t = await gatewayWithJobs(undefined);
    try {
      const r = await json(await post(t, batch(1)));
      expect(r.status).toBe(503);
      expect(r.body.error).toMatchObject({ code: 'jobs_unavailable', retryable: true });
      expect(r.body.error.message).toContain('QUEUE_REDIS_URL');
      expect((await fetch(`${t.baseUrl}/api/jobs?user_id=u`)).status).toBe(503);
    } finally {
      await t.close();
    }
  });
});

describe('jobs on a queue Redis that is down', () => {
  it('fails fast with 503, never waiting for Redis to come back', async () => {
    const t = await gatewayWithJobs(`redis://127.0.0.1:${await freePort()}`);
    try {
      const started = Date.now();
      const r = await json(await post(t, batch(1)));
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe('jobs_unavailable');
      expect(Date.now() - started).toBeLessThan(1_000);
      expect((await fetch(`${t.baseUrl}/api/jobs?user_id=u`)).status).toBe(503);
    } finally {
      await t.close();
    }
  });
});

describe('jobs on a queue Redis that evicts keys', () => {
  it('refuses jobs (503) and says why: a queue there would lose them', async () => {
    const redis = await startRedis(undefined, { args: ['--maxmemory-policy', 'allkeys-lru'] });
    const t = await gatewayWithJobs(redis.url);
    try {
      let r: { status: number; body: any } | undefined;
      for (let i = 0; i < 50; i++) {
        r = await json(await post(t, batch(1)));
        if (r.body.error?.message?.includes('noeviction')) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      expect(r!.status).toBe(503);
      expect(r!.body.error.code).toBe('jobs_unavailable');
      expect(r!.body.error.message).toContain('maxmemory-policy allkeys-lru');
    } finally {
      await t.close();
      await redis.stop();
    }
  });
});

describe('jobs on a queue Redis, no worker running', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let t: Awaited<ReturnType<typeof gatewayWithJobs>>;
  beforeAll(async () => {
    redis = await startRedis(undefined, { args: ['--maxmemory-policy', 'noeviction'] });
    t = await gatewayWithJobs(redis.url);
    // The eviction policy is read once connected.
    for (let i = 0; i < 50 && !t.desk!.desk.status().available; i++) await new Promise((r) => setTimeout(r, 20));
  });
  afterAll(async () => {
    await t?.close();
    await redis?.stop();
  });

  it('validates kind, limits, webhook host and caller before queueing anything', async () => {
    const cases: [unknown, number, string][] = [
      [{ ...batch(1), kind: 'essay' }, 400, 'unknown_job_kind'],
      [batch(JOB_LIMITS.itemsMax + 1), 400, 'too_many_items'],
      [{ ...batch(1), input: { items: [] } }, 400, 'validation_failed'],
      [{ user_id: 'u', kind: 'document_audit', input: { document: 'x'.repeat(JOB_LIMITS.documentMaxChars + 1) } }, 400, 'validation_failed'],
      [{ user_id: 'u', kind: 'document_audit', input: { document: '   ' } }, 400, 'validation_failed'],
      [{ ...batch(1), task_type: 'poetry' }, 400, 'unknown_task_type'],
      [{ ...batch(1), webhook_url: 'https://attacker.example/hook' }, 400, 'webhook_not_allowed'],
      [{ ...batch(1), webhook_url: 'http://169.254.169.254/latest/meta-data' }, 400, 'webhook_not_allowed'],
      [{ ...batch(1), webhook_url: 'ftp://127.0.0.1/x' }, 400, 'webhook_not_allowed'],
      [{ ...batch(1), user_id: undefined }, 400, 'validation_failed'],
      [{ ...batch(1), user_id: 'a b' }, 400, 'validation_failed'],
    ];
    for (const [body, status, code] of cases) {
      const r = await json(await post(t, body));
      expect([r.status, r.body.error?.code], JSON.stringify(body).slice(0, 80)).toEqual([status, code]);
    }
    const tooBig = await post(t, { ...batch(1), pad: 'x'.repeat(JOB_LIMITS.bodyMaxBytes) });
    expect(tooBig.status).toBe(413);
    expect((await json(await fetch(`${t.baseUrl}/api/jobs?user_id=ms.rivera@school.example`))).body.total).toBe(0);
  });

  it('queues a job (202, Location), shows it to its owner only, and lists the owner\'s jobs by page', async () => {
    const owner = 'owner.list@school.example';
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await post(t, batch(2, { user_id: owner, webhook_url: 'http://127.0.0.1:9/hook' }));
      const body = (await res.json());
      expect(res.status).toBe(202);
      expect(res.headers.get('location')).toBe(`/api/jobs/${body.id}`);
      expect(body).toMatchObject({ state: 'queued', kind: 'batch_alignment', task_type: 'framework_alignment', webhook: { state: 'pending', attempts: 0 } });
      ids.push(body.id);
    }
    const mine = await json(await fetch(`${t.baseUrl}/api/jobs/${ids[0]}?user_id=${owner}`));
    expect(mine.status).toBe(200);
    expect(mine.body.links.events).toBe(`/api/jobs/${ids[0]}/events`);
    for (const url of [`/api/jobs/${ids[0]}?user_id=someone.else`, `/api/jobs/${ids[0]}/events?user_id=someone.else`, '/api/jobs/not-a-job?user_id=x']) {
      const r = await json(await fetch(`${t.baseUrl}${url}`));
      expect([r.status, r.body.error.code], url).toEqual([404, 'not_found']);
    }
    const del = await json(await fetch(`${t.baseUrl}/api/jobs/${ids[0]}?user_id=someone.else`, { method: 'DELETE' }));
    expect(del.status).toBe(404);
    const first = await json(await fetch(`${t.baseUrl}/api/jobs?user_id=${owner}&limit=2`));
    expect(first.body).toMatchObject({ total: 3, next_offset: 2 });
    expect(first.body.jobs.map((j: any) => j.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.jobs[0].result).toBeUndefined();
    const second = await json(await fetch(`${t.baseUrl}/api/jobs?user_id=${owner}&limit=2&offset=2`));
    expect(second.body).toMatchObject({ total: 3, next_offset: null });
    expect(second.body.jobs.map((j: any) => j.id)).toEqual([ids[0]]);
    expect((await fetch(`${t.baseUrl}/api/jobs?user_id=${owner}&limit=1000`)).status).toBe(400);
  });

  it('cancels a queued job at once, pushes job_failed to the owner\'s sockets only, and replays its events over SSE', async () => {
    const owner = 'ms.rivera@school.example';
    const mine = await TestSocket.open(`${t.wsUrl}/ws/assistant/s-1?user_id=${encodeURIComponent(owner)}`);
    const mine2 = await TestSocket.open(`${t.wsUrl}/ws/assistant/s-2?user_id=${encodeURIComponent(owner)}`);
    const theirs = await TestSocket.open(`${t.wsUrl}/ws/assistant/s-3?user_id=someone.else`);
    try {
      const job = (await (await post(t, batch(1))).json());
      const queued = await mine.next();
      expect(queued).toMatchObject({ type: 'job_progress', job_id: job.id, seq: 1, state: 'queued', percent: 0 });
      const del = await json(await fetch(`${t.baseUrl}/api/jobs/${job.id}?user_id=${owner}`, { method: 'DELETE' }));
      expect(del.status).toBe(200);
      expect(del.body).toMatchObject({ state: 'cancelled', error: { code: 'cancelled' } });
      for (const s of [mine, mine2]) {
        const failed = (await s.until('job_failed')).at(-1)!;
        expect(failed).toMatchObject({ job_id: job.id, seq: 2, state: 'cancelled', error: { code: 'cancelled', retryable: false } });
      }
      // Cancelling again is harmless; a finished job cannot be cancelled.
      expect((await fetch(`${t.baseUrl}/api/jobs/${job.id}?user_id=${owner}`, { method: 'DELETE' })).status).toBe(200);
      const sse = await fetch(`${t.baseUrl}/api/jobs/${job.id}/events?user_id=${owner}`);
      expect(sse.headers.get('content-type')).toContain('text/event-stream');
      const text = await sse.text();
      expect(text).toContain('id: 1\nevent: job_progress');
      expect(readEvents(text).map((e) => [e.seq, e.type])).toEqual([[1, 'job_progress'], [2, 'job_failed']]);
      const resumed = await fetch(`${t.baseUrl}/api/jobs/${job.id}/events?user_id=${owner}`, { headers: { 'last-event-id': '1' } });
      expect(readEvents(await resumed.text()).map((e) => e.seq)).toEqual([2]);
      await new Promise((r) => setTimeout(r, 100));
      expect(theirs.received.filter((m) => m.type.startsWith('job_'))).toEqual([]);
    } finally {
      await Promise.all([mine.close(), mine2.close(), theirs.close()]);
    }
  });

  it('counts submissions and reports the queue depth', async () => {
    const text = await (await fetch(`${t.baseUrl}/api/metrics`)).text();
    expect(text).toMatch(/jobs_submitted_total\{[^}]*kind="batch_alignment"[^}]*outcome="accepted"[^}]*\} [1-9]/);
    expect(text).toMatch(/jobs_submitted_total\{[^}]*outcome="rejected"[^}]*\} [1-9]/);
    expect(text).toMatch(/jobs_queue_depth\{[^}]*queue="actionedx-jobs"[^}]*state="waiting"[^}]*\} 3/);
  });
});

function readEvents(text: string): JobEvent[] {
  return text
    .split('\n\n')
    .map((block) => block.split('\n').find((l) => l.startsWith('data: ')))
    .filter((l): l is string => l !== undefined)
    .map((l) => JSON.parse(l.slice(6)) as JobEvent);
}
