import { randomUUID } from 'node:crypto';
import { counterSum } from '@actionedx/testkit';
import { record, type Scenario } from '../lib/context.js';
import { histTotals, meanMsBetween } from '../lib/probes.js';
import { startBenchStack, type BenchStack } from '../lib/stack.js';
import { percentile } from '../lib/stats.js';

/** The model of the issue: 300 ms to the first token, 48-token answers; four model calls per worker. */
const TTFT_MS = 300;
const SLOTS = 4;
const WORKERS = [1, 2, 3];

interface Shot {
  status: number;
  ms: number;
}

async function ask(url: string, body: Record<string, unknown>): Promise<Shot> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${url}/api/assistant/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    await res.arrayBuffer();
    return { status: res.status, ms: performance.now() - t0 };
  } catch {
    return { status: 0, ms: performance.now() - t0 };
  }
}

const miss = (user: string) => ({ user_id: user, message: `scale ${randomUUID()}`, use_cache: false });

/** `clients` clients, each asking again as soon as it has its answer, for `ms`: answers per second. */
async function closedLoop(url: string, clients: number, ms: number): Promise<{ rps: number; shots: Shot[] }> {
  const shots: Shot[] = [];
  const end = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (performance.now() < end) shots.push(await ask(url, miss(`loop-${c}`)));
    }),
  );
  const ok = shots.filter((s) => s.status === 200).length;
  return { rps: ok / ((performance.now() - t0) / 1000), shots };
}

/** Requests arriving at `rate` per second for `ms`, whatever the answers: an open-loop overload. */
async function openLoop(url: string, rate: number, ms: number): Promise<Shot[]> {
  const shots: Promise<Shot>[] = [];
  const t0 = performance.now();
  for (let i = 0; performance.now() - t0 < ms; i++) {
    shots.push(ask(url, miss(`open-${i % 500}`)));
    const due = t0 + ((i + 1) * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return Promise.all(shots);
}

async function metric(stack: BenchStack, name: string): Promise<number> {
  let sum = 0;
  for (const o of stack.orchestrators) sum += counterSum(await (await fetch(`${o.url}/metrics`)).text(), name);
  return sum;
}

/**
 * Issue "request queuing": throughput with 1, 2 and 3 orchestrators of MAX_IN_FLIGHT=4 each (the cap makes a
 * worker's capacity 4 answers per model time), an overload at 3x one worker's capacity (admitted requests keep
 * their latency, the rest get a 503 at once), and what the queue costs a cached hit and a miss.
 */
export const scale: Scenario = {
  id: 'scale',
  title: `Scaling on the work queue: MAX_IN_FLIGHT=${SLOTS}, model ${TTFT_MS} ms to first token, 48 tokens; 1, 2, 3 orchestrators`,
  async run(ctx, out) {
    out.baseline = 'one orchestrator (throughput), the same requests unloaded (latency)';
    const seconds = ctx.secs(10, 5);
    const rps: Record<number, number> = {};
    for (const n of WORKERS) {
      const stack = await startBenchStack({
        scenario: `scale-${n}`,
        orchestrators: n,
        profile: ctx.profile,
        // A queue of about one answer's worth of jobs per slot: admitted requests wait at most one answer.
        orchestratorEnv: { MAX_IN_FLIGHT: String(SLOTS), QUEUE_MAX: String(2 * SLOTS * n), QUEUE_MAX_PER_USER: String(2 * SLOTS * n) },
      });
      try {
        await stack.mock({ ttft_ms: TTFT_MS, tokens_per_second: 0, completion_tokens: 48 });
        await closedLoop(stack.url, SLOTS * n, 1_000); // warm-up
        // Clients enough to keep every slot busy (twice the slots): the queue is never empty.
        const r = await closedLoop(stack.url, 2 * SLOTS * n, seconds * 1000);
        rps[n] = r.rps;
        const refused = r.shots.filter((s) => s.status === 503).length;
        ctx.log(`  ${n} orchestrator(s): ${r.rps.toFixed(1)} answers/s (${refused} refused of ${r.shots.length})`);
        out.details[`workers_${n}`] = { rps: r.rps, requests: r.shots.length, refused, p50: percentile(r.shots.filter((s) => s.status === 200).map((s) => s.ms), 50) };

        if (n === 1) {
          // Unloaded: one request at a time; then an open-loop load at three times the capacity.
          const unloaded: number[] = [];
          for (let i = 0; i < ctx.count(40, 15); i++) unloaded.push((await ask(stack.url, miss('calm'))).ms);
          const capacity = r.rps;
          const over = await openLoop(stack.url, 3 * capacity, seconds * 1000);
          const admitted = over.filter((s) => s.status === 200).map((s) => s.ms);
          const rejected = over.filter((s) => s.status === 503).map((s) => s.ms);
          const other = over.filter((s) => s.status !== 200 && s.status !== 503).length;
          const p99Unloaded = percentile(unloaded, 99);
          record(out, 0, 
            { metric: 'at 3x capacity: admitted p99 vs unloaded p99', unit: 'ms', product: percentile(admitted, 99), baseline: p99Unloaded, goal: { kind: 'max_ratio', value: 2 } },
            { metric: 'at 3x capacity: 503 overloaded p99', unit: 'ms', product: rejected.length ? percentile(rejected, 99) : null, baseline: null, goal: { kind: 'max', value: 50 } },
            { metric: 'at 3x capacity: admitted / refused / other', unit: 'requests', product: admitted.length, baseline: rejected.length, note: `other ${other}` },
          );
          out.details.overload = { rate: 3 * capacity, admitted: admitted.length, rejected: rejected.length, other, p50_rejected: percentile(rejected, 50), p99_unloaded: p99Unloaded };

          // What the queue costs: a hit never touches it; a miss pays its publish and the pull to a slot.
          await stack.mock({ ttft_ms: 0, tokens_per_second: 0, completion_tokens: 48 });
          const hitBody = { user_id: 'hit', message: `cached ${randomUUID()}` };
          await ask(stack.url, hitBody);
          const enq0 = await metric(stack, 'chat_queue_enqueued_total');
          const hits: number[] = [];
          for (let i = 0; i < ctx.count(300, 100); i++) hits.push((await ask(stack.url, hitBody)).ms);
          const enq1 = await metric(stack, 'chat_queue_enqueued_total');
          const w0 = await histTotals(stack.orchestrators[0]!.url, 'chat_queue_wait_seconds');
          const misses: number[] = [];
          for (let i = 0; i < ctx.count(200, 60); i++) misses.push((await ask(stack.url, miss('cost'))).ms);
          const w1 = await histTotals(stack.orchestrators[0]!.url, 'chat_queue_wait_seconds');
          record(out, 0, 
            { metric: 'cached hit: queue operations per hit', unit: 'ops', product: (enq1 - enq0) / hits.length, baseline: null, goal: { kind: 'eq', value: 0 } },
            { metric: 'cached hit latency p50 (lookup lane, no queue)', unit: 'ms', product: percentile(hits, 50), baseline: null },
            { metric: 'miss: queue time per miss (publish to slot, mean)', unit: 'ms', product: meanMsBetween(w0, w1), baseline: null, goal: { kind: 'max', value: 3 } },
            { metric: 'miss latency p50 (model answers at once)', unit: 'ms', product: percentile(misses, 50), baseline: null },
          );
        }
      } finally {
        await stack.stop();
      }
    }
    record(out, 0, 
      { metric: 'throughput 2 workers vs 1', unit: 'answers/s', product: rps[2]!, baseline: rps[1]!, goal: { kind: 'min_ratio', value: 1.8 } },
      { metric: 'throughput 3 workers vs 1', unit: 'answers/s', product: rps[3]!, baseline: rps[1]!, goal: { kind: 'min_ratio', value: 2.6 } },
    );
  },
};
