import { record, type Scenario } from '../lib/context.js';
import { ClientProcess } from '../lib/clients.js';
import { startBenchStack } from '../lib/stack.js';
import { histTotals, meanMsBetween } from '../lib/probes.js';
import { percentile } from '../lib/stats.js';
import type { Target } from '../clients/worker.js';
import { DIRECT_MODEL, DIRECT_SYSTEM } from './streaming.js';

const TTFT_MS = 50;

/** Scenario 5: what the platform adds to an uncached request, with mock-llm answering after a fixed 50 ms. */
export const miss: Scenario = {
  id: 'miss',
  title: `Miss-path overhead: uncached request, mock-llm first token after ${TTFT_MS} ms`,
  async run(ctx, out) {
    out.baseline = 'the openai SDK calling mock-llm directly (one JSON answer), in turns with the platform request from one client process';
    const stack = await startBenchStack({ scenario: 'miss', orchestrators: 1, profile: ctx.profile });
    const client = await ClientProcess.start();
    try {
      await stack.mock({ ttft_ms: TTFT_MS, tokens_per_second: 0, completion_tokens: 48 });
      const targets: Record<string, Target> = {
        platform: { kind: 'rest', url: `${stack.url}/api/assistant/chat`, body: { user_id: 'bench-user', use_cache: false } },
        direct: { kind: 'sdk-json', baseURL: `${stack.mockLlm.url}/v1`, model: DIRECT_MODEL, system: DIRECT_SYSTEM },
        direct_stream: { kind: 'sdk-stream', baseURL: `${stack.mockLlm.url}/v1`, model: DIRECT_MODEL, system: DIRECT_SYSTEM },
      };
      const perRound = ctx.count(120, 30);
      ctx.log(`  ${ctx.rounds} rounds of ${perRound}: platform REST, SDK JSON, SDK stream (request by request, in turns)`);
      const chatRoute = (labels: string) => labels.includes('chat');
      const readTimers = () =>
        Promise.all([
          histTotals(stack.gateway.opsUrl, 'http_request_duration_seconds', chatRoute),
          histTotals(stack.orchestrators[0]!.url, 'ai_request_latency_seconds'),
        ]);
      const message = 'What is retrieval practice?';
      await client.seq({ targets, rounds: ctx.count(10, 3), maxMs: 10_000, message });
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
      const samples: Array<Record<string, unknown>> = [];
      for (let round = 0; round < ctx.rounds; round++) {
        ctx.log(`  round ${round + 1}/${ctx.rounds}`);
        const [gw0, orch0] = await readTimers();
        const r = await client.seq({ targets, rounds: perRound, maxMs: ctx.secs(30, 8) * 1000, message });
        const [gw1, orch1] = await readTimers();
        const p = r.platform!;
        const d = r.direct!;
        const ds = r.direct_stream!;
        if (p.dur.length === 0) throw new Error(`no platform request succeeded: ${p.errorSamples.join('; ')}`);
        // Where the extra time goes: means over the same requests, from the client, the gateway's HTTP timer and
        // its latency_ms (dispatch to terminal frame), and the orchestrator's ai_request_latency_seconds.
        const clientMean = mean(p.dur);
        const gatewayHttp = meanMsBetween(gw0, gw1);
        const gatewayDispatch = mean(p.inner);
        const worker = meanMsBetween(orch0, orch1);
        record(
          out,
          round,
          { metric: 'latency p50', unit: 'ms', product: percentile(p.dur, 50), baseline: percentile(d.dur, 50), goal: { kind: 'max_diff', value: 3 } },
          { metric: 'latency p99', unit: 'ms', product: percentile(p.dur, 99), baseline: percentile(d.dur, 99), goal: { kind: 'max_diff', value: 10 } },
          { metric: 'latency mean', unit: 'ms', product: clientMean, baseline: mean(d.dur), versus: 'diff' },
          // The orchestrator makes a streaming call: against the SDK's streaming call the difference is the platform alone.
          { metric: 'latency p50 against the SDK streaming call (no goal)', unit: 'ms', product: percentile(p.dur, 50), baseline: percentile(ds.dur, 50), versus: 'diff' },
          { metric: 'mean: client − gateway HTTP timer (loopback, client)', unit: 'ms', product: clientMean - gatewayHttp, baseline: null },
          { metric: 'mean: HTTP timer − dispatch (express, validation, reply)', unit: 'ms', product: gatewayHttp - gatewayDispatch, baseline: null },
          { metric: 'mean: dispatch − orchestrator run (bus, ack, frames)', unit: 'ms', product: gatewayDispatch - worker, baseline: null },
          { metric: 'mean: orchestrator run (vs direct SDK call)', unit: 'ms', product: worker, baseline: mean(d.dur), versus: 'diff' },
          { metric: 'errors', unit: '', product: p.errors, baseline: d.errors + ds.errors, goal: { kind: 'eq', value: 0 } },
        );
        samples.push(
          Object.fromEntries(
            Object.entries(r).map(([k, t]) => [
              k,
              { n: t.dur.length, errors: t.errors, error_samples: t.errorSamples, p50: percentile(t.dur, 50), p90: percentile(t.dur, 90), p99: percentile(t.dur, 99), max: Math.max(...t.dur) },
            ]),
          ),
        );
      }
      out.details = { ...out.details, ttft_ms: TTFT_MS, completion_tokens: 48, requests_per_target_per_round: perRound, rounds: samples };
    } finally {
      await client.stop();
      await stack.stop();
    }
  },
};
