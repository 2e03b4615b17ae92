import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient, type Redis } from '../redis.js';
import { JobStore, type NewJob } from './job-store.js';

/** The job store on a real Redis (REDIS_URL), every test under a prefix of its own. */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

let redis: Redis;
beforeAll(async () => {
  redis = createRedisClient({ url: REDIS_URL, name: 'job-store-test', commandTimeoutMs: 2_000, connectTimeoutMs: 2_000 });
  await new Promise<void>((resolve, reject) => {
    redis.once('ready', () => resolve());
    setTimeout(() => reject(new Error(`Redis at ${REDIS_URL} did not answer`)), 3_000).unref();
  });
});
const prefixes: string[] = [];
afterAll(async () => {
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  await redis?.quit();
});

function storeFor(opts: { retentionSeconds?: number; maxEvents?: number } = {}): JobStore {
  const prefix = `test-jobs-${randomUUID()}`;
  prefixes.push(prefix);
  return new JobStore(redis, { prefix, ...opts });
}
const newJob = (owner: string, createdAt = Date.now()): NewJob => ({
  id: `job-${randomUUID()}`,
  kind: 'batch_alignment',
  owner,
  task_type: 'framework_alignment',
  mode: 'ally',
  title: null,
  session_id: 'sess-1',
  use_cache: false,
  input: { items: [{ text: 'a lesson' }] },
  webhook_url: null,
  created_at: createdAt,
  steps_total: 1,
});

describe('JobStore', () => {
  it('creates and reads a record with its defaults', async () => {
    const store = storeFor();
    const job = newJob('u1');
    await store.create(job);
    const rec = await store.get(job.id);
    expect(rec).toMatchObject({ ...job, state: 'queued', percent: 0, attempts: 0, cancel_requested: false, result: null, error: null, webhook_state: null });
    expect(await store.get('job-missing')).toBeUndefined();
  });

  it('lists an owner\'s jobs newest first, by page, dropping expired ones', async () => {
    const store = storeFor();
    const jobs = [newJob('u2', 1_000), newJob('u2', 2_000), newJob('u2', 3_000), newJob('other', 4_000)];
    for (const j of jobs) await store.create(j);
    const page1 = await store.list('u2', 0, 2);
    expect(page1.total).toBe(3);
    expect(page1.jobs.map((j) => j.id)).toEqual([jobs[2]!.id, jobs[1]!.id]);
    expect((await store.list('u2', 2, 2)).jobs.map((j) => j.id)).toEqual([jobs[0]!.id]);
    await redis.del(`${(store as unknown as { prefix: string }).prefix}:${jobs[1]!.id}`);
    const after = await store.list('u2', 0, 10);
    expect(after.jobs.map((j) => j.id)).toEqual([jobs[2]!.id, jobs[0]!.id]);
    expect(after.total).toBe(2);
  });

  it('changes a live job only: a late write after its end changes nothing, and the end starts its retention', async () => {
    const store = storeFor({ retentionSeconds: 600 });
    const job = newJob('u3');
    await store.create(job);
    expect(await store.update(job.id, { state: 'active', percent: 50, message: 'half' })).toBe(true);
    expect(await store.requestCancel(job.id)).toBe(true);
    expect(await store.cancelRequested(job.id)).toBe(true);
    expect(await store.update(job.id, { state: 'cancelled', error: { code: 'cancelled', message: 'x', retryable: false } })).toBe(true);
    expect(await store.update(job.id, { state: 'completed', percent: 100 })).toBe(false);
    const rec = await store.get(job.id);
    expect(rec).toMatchObject({ state: 'cancelled', percent: 50, cancel_requested: true, error: { code: 'cancelled' } });
    const ttl = await redis.ttl(`${(store as unknown as { prefix: string }).prefix}:${job.id}`);
    expect(ttl).toBeGreaterThan(500);
    expect(await store.update('job-missing', { state: 'active' })).toBe(false);
  });

  it('keeps finished steps by index for a retry to skip', async () => {
    const store = storeFor();
    const job = newJob('u4');
    await store.create(job);
    const step = { index: 1, label: 'Item 2', response: 'r', suggestions: ['s'], model: 'm', cached: false, usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }, cost_usd: 0.5, worker_id: 'w', attempt: 1, ms: 10 };
    await store.saveStep(job.id, step);
    const steps = await store.steps(job.id);
    expect([...steps.keys()]).toEqual([1]);
    expect(steps.get(1)).toEqual(step);
  });

  it('numbers events from 1, keeps the last ones, and replays after a seq', async () => {
    const store = storeFor({ maxEvents: 3 });
    const job = newJob('u5');
    await store.create(job);
    for (let i = 0; i < 5; i++) {
      const e = await store.appendEvent({ type: 'job_progress', job_id: job.id, kind: 'batch_alignment', state: 'active', percent: i * 20, message: `step ${i}`, steps_done: i, steps_total: 5 });
      expect(e?.seq).toBe(i + 1);
    }
    expect((await store.events(job.id)).map((e) => e.seq)).toEqual([3, 4, 5]);
    expect((await store.events(job.id, 4)).map((e) => e.seq)).toEqual([5]);
    expect(await store.appendEvent({ type: 'job_progress', job_id: 'job-missing', kind: 'batch_alignment', state: 'active', percent: 0, message: '', steps_done: 0, steps_total: 0 })).toBeUndefined();
  });
});
