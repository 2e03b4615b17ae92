import { getJson, postJson, startRedis, until } from '@actionedx/testkit';
import { record, type BenchContext, type Scenario } from '../lib/context.js';
import { onCleanup } from '../lib/procs.js';
import { startBenchStack, type BenchStack } from '../lib/stack.js';

/** Items per job: one model call each, no cache (every call reaches the slow mock). */
const ITEMS = 3;
/** The slow model: a first token after 300 ms, then 48 tokens at 200/s (about 0.55 s a call). */
const SLOW_MODEL = { ttft_ms: 300, tokens_per_second: 200, completion_tokens: 48 };

/**
 * Background jobs: jobs per minute with one job worker, then two (each runs one job at a time), on a slow mock
 * model. The work is waiting on the model, so a second worker should nearly double the rate (goal ≥ 1.8×).
 */
export const jobs: Scenario = {
  id: 'jobs',
  title: `Background jobs: jobs/min with 1 and 2 job workers (batch of ${ITEMS} items each, slow model)`,
  async run(ctx, out) {
    out.baseline = 'the same jobs on one job worker';
    const queue = await startRedis(undefined, { args: ['--maxmemory-policy', 'noeviction'] });
    const unregister = onCleanup('jobs queue Redis', () => queue.stop());
    const jobsEnv = { QUEUE_REDIS_URL: queue.url };
    let stack: BenchStack | undefined;
    try {
      stack = await startBenchStack({
        scenario: 'jobs',
        orchestrators: 1,
        profile: ctx.profile,
        gatewayEnv: jobsEnv,
        orchestratorEnv: { ...jobsEnv, ROLE: 'jobs', JOB_CONCURRENCY: '1' },
      });
      await stack.mock(SLOW_MODEL);
      // The gateway is ready before its queue Redis client is: wait until it takes jobs.
      await until(async () => (await getJson(`${stack!.url}/api/jobs?user_id=bench-probe`)).status === 200, 10_000, 'the gateway to reach the queue Redis');
      const n = ctx.count(16, 6);
      const rounds: Array<{ one: Round; two: Round }> = [];
      for (let r = 0; r < ctx.rounds; r++) {
        // Each round measures one worker, then two; the second worker is stopped again before the next round.
        const one = await round(ctx, stack, 1, n);
        const second = await stack.addOrchestrator({ ...jobsEnv, ROLE: 'jobs', JOB_CONCURRENCY: '1' });
        const two = await round(ctx, stack, 2, n);
        await second.stop(5_000);
        rounds.push({ one, two });
        record(
          out,
          r,
          { metric: `jobs/min, 2 workers vs 1 (${n} jobs)`, unit: 'jobs/min', product: two.perMinute, baseline: one.perMinute, goal: { kind: 'min_ratio', value: 1.8 } },
          { metric: 'failed jobs', unit: 'jobs', product: one.failed + two.failed, baseline: null, goal: { kind: 'eq', value: 0 } },
        );
      }
      out.details = { items_per_job: ITEMS, model: SLOW_MODEL, job_concurrency: 1, rounds };
    } finally {
      await stack?.stop();
      unregister();
      await queue.stop();
    }
  },
};

interface Round {
  jobs: number;
  seconds: number;
  perMinute: number;
  failed: number;
}

/** Submits `n` jobs at once and waits for all of them to end; the rate is jobs over the time to the last end. */
async function round(ctx: BenchContext, stack: BenchStack, workers: number, n: number): Promise<Round> {
  const label = `${workers} worker${workers === 1 ? '' : 's'}`;
  const user = `bench-jobs-${workers}-${Date.now()}`;
  const started = performance.now();
  const submitted = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      postJson(`${stack.url}/api/jobs`, {
        user_id: user,
        kind: 'batch_alignment',
        use_cache: false,
        input: { items: Array.from({ length: ITEMS }, (_, k) => ({ text: `Lesson plan ${k + 1} of job ${i + 1} (${label}, ${user})` })) },
      }),
    ),
  );
  const refused = submitted.filter((r) => r.status !== 202);
  if (refused.length > 0) throw new Error(`${refused.length} submissions refused: ${JSON.stringify(refused[0]!.body)}`);
  let ended: { state: string }[] = [];
  await until(
    async () => {
      const list = await getJson<{ jobs: { state: string }[] }>(`${stack.url}/api/jobs?user_id=${user}&limit=100`);
      ended = list.body.jobs.filter((j) => ['completed', 'failed', 'cancelled'].includes(j.state));
      return ended.length === n;
    },
    ctx.secs(180, 90) * 1000,
    `${n} jobs to end (${label})`,
  );
  const seconds = (performance.now() - started) / 1000;
  const r = { jobs: n, seconds: Math.round(seconds * 100) / 100, perMinute: Math.round((n / seconds) * 60 * 10) / 10, failed: ended.filter((j) => j.state !== 'completed').length };
  ctx.log(`  ${label}: ${n} jobs in ${r.seconds} s = ${r.perMinute} jobs/min`);
  return r;
}
