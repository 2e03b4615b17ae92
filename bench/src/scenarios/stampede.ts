import { counterSum, mockCompletions } from '@actionedx/testkit';
import { record, type Scenario } from '../lib/context.js';
import { ClientProcess } from '../lib/clients.js';
import { scrapeMetrics } from '../lib/probes.js';
import { startBenchStack } from '../lib/stack.js';

const N = 100;

/** Scenario 3: N identical concurrent requests on a cold key, two orchestrator processes: one model call. */
export const stampede: Scenario = {
  id: 'stampede',
  title: `Stampede: ${N} identical concurrent requests on a cold key, 2 orchestrators`,
  async run(ctx, out) {
    out.baseline = 'none (the goal is absolute)';
    const stack = await startBenchStack({ scenario: 'stampede', orchestrators: 2, profile: ctx.profile });
    const client = await ClientProcess.start();
    // cache_operations_total{result="error"|"skipped"} (answer-store get, recheck, set) over both orchestrators.
    const cacheFailures = async () => {
      let n = 0;
      for (const o of stack.orchestrators) n += counterSum(await scrapeMetrics(o.url), 'cache_operations_total', (labels) => /result="(error|skipped)"/.test(labels));
      return n;
    };
    try {
      // With a first token after 200 ms every request arrives while the leader is still waiting on the model;
      // with 0 ms the answer can land while requests are still arriving. Both must make exactly one call, in
      // every round (each round on a cold key of its own).
      for (let round = 0; round < ctx.rounds; round++) {
        for (const ttft of [200, 0]) {
          await stack.mock({ ttft_ms: ttft, tokens_per_second: 0, completion_tokens: 120 });
          const before = await mockCompletions(stack.mockLlm.url);
          const failed0 = await cacheFailures();
          const body = { user_id: 'bench-user', message: `Stampede question ${Date.now()} (ttft ${ttft}, round ${round + 1})`, task_type: 'realtime_tutoring' };
          ctx.log(`  round ${round + 1}/${ctx.rounds}: ${N} identical requests at once, model TTFT ${ttft} ms`);
          const r = await client.burst({ url: `${stack.url}/api/assistant/chat`, body, n: N });
          const calls = (await mockCompletions(stack.mockLlm.url)) - before;
          const failed = (await cacheFailures()) - failed0;
          const ok = r.statuses.filter((s) => s === 200).length;
          const answers = new Map<string, number>();
          r.responses.forEach((resp, i) => {
            if (r.statuses[i] === 200) answers.set(resp, (answers.get(resp) ?? 0) + 1);
          });
          const mostCommon = Math.max(0, ...answers.values());
          record(
            out,
            round,
            { metric: `upstream calls (TTFT ${ttft} ms)`, unit: 'calls', product: calls, baseline: null, goal: { kind: 'eq', value: 1 } },
            { metric: `identical 200 answers (TTFT ${ttft} ms)`, unit: `of ${N}`, product: ok === N ? mostCommon : Math.min(ok, mostCommon), baseline: null, goal: { kind: 'eq', value: N } },
            // A cache command that fails or times out fails open (the request goes to the model): the first suspect
            // when there is more than one upstream call. The flight lock's own failures have no counter.
            { metric: `answer-store operations failed or skipped (TTFT ${ttft} ms)`, unit: 'ops', product: failed, baseline: null },
          );
          out.details[`round_${round + 1}_ttft_${ttft}`] = {
            upstream_calls: calls,
            cache_operations_failed_or_skipped: failed,
            statuses: Object.fromEntries([...new Set(r.statuses)].map((s) => [s, r.statuses.filter((x) => x === s).length])),
            distinct_answers: answers.size,
            flagged_cached: r.cached.filter(Boolean).length,
            burst_ms: r.ms,
            errors: r.errors,
          };
        }
      }
    } finally {
      await client.stop();
      await stack.stop();
    }
  },
};
