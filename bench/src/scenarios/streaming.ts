import type { Scenario } from '../lib/context.js';
import { ClientProcess, type LoadResult, type Tally } from '../lib/clients.js';
import { histTotals, meanMsBetween, metricsProbe, pidProbe, redisProbe, snapshot, type CpuProbe } from '../lib/probes.js';
import { startBenchStack } from '../lib/stack.js';
import { percentile } from '../lib/stats.js';
import type { Target } from '../clients/worker.js';

/** Close to the prompt the orchestrator sends (persona + instructions + the suggestions line), so answers match in shape. */
export const DIRECT_SYSTEM =
  'You are the Strategist. Tutor the learner in real time: answer the question at their level, give one worked example, and check understanding with a short question.\n\n' +
  'End your answer with a line "Suggestions:" followed by two or three short follow-up prompts, one per line, each starting with "- ".';
export const DIRECT_MODEL = 'gpt-4o-mini';

const TOKENS = 400;

const charsPerSecond = (t: { chars: number }, ms: number) => (ms > 0 ? (t.chars * 1000) / ms : Number.NaN);
const sumDur = (t: Tally) => t.dur.reduce((a, b) => a + b, 0);

/** Scenario 2: an uncached answer streamed through the platform (WebSocket, SSE) against the openai SDK reading mock-llm. */
export const streaming: Scenario = {
  id: 'streaming',
  title: `Streaming an uncached answer (${TOKENS} tokens, no delay between tokens)`,
  async run(ctx, out) {
    out.baseline = 'the openai SDK streaming from mock-llm directly (same mock, same answer length), same client process';
    const stack = await startBenchStack({ scenario: 'streaming', orchestrators: 1, profile: ctx.profile, firstSection: 'one-stream' });
    const client = await ClientProcess.start();
    try {
      await stack.mock({ ttft_ms: 0, tokens_per_second: 0, completion_tokens: TOKENS });
      const targets: Record<string, Target> = {
        sdk: { kind: 'sdk-stream', baseURL: `${stack.mockLlm.url}/v1`, model: DIRECT_MODEL, system: DIRECT_SYSTEM },
        ws: { kind: 'ws', url: `${stack.wsUrl}/ws/assistant/{session}?user_id={user}`, payload: { use_cache: false } },
        sse: { kind: 'sse', url: `${stack.url}/api/assistant/chat`, body: { user_id: 'bench-user', use_cache: false } },
      };
      const message = 'Explain spaced repetition with a worked example';

      // A. One stream at a time, the three targets in turns: time to first chunk and per-stream content rate.
      ctx.log('  one stream at a time (ws, sse, sdk in turns)');
      await client.seq({ targets, rounds: ctx.count(10, 3), maxMs: 20_000, message });
      const orchUrl = stack.orchestrators[0]!.url;
      const timers = () => Promise.all([histTotals(orchUrl, 'ai_time_to_first_token_seconds'), histTotals(orchUrl, 'ai_request_latency_seconds')]);
      const [ttft0, run0] = await timers();
      const seq = await client.seq({ targets, rounds: ctx.count(150, 30), maxMs: ctx.secs(25, 8) * 1000, message });
      const [ttft1, run1] = await timers();
      for (const [name, t] of Object.entries(seq)) {
        if (t.errors > 0) out.details[`errors_seq_${name}`] = { count: t.errors, samples: t.errorSamples };
      }
      const sdk = seq.sdk!;
      for (const tr of ['ws', 'sse'] as const) {
        const t = seq[tr]!;
        if (t.ttfc.length === 0) throw new Error(`${tr}: no stream succeeded: ${t.errorSamples.join('; ')}`);
        out.rows.push(
          { metric: `${tr} time to first chunk p50`, unit: 'ms', product: percentile(t.ttfc, 50), baseline: percentile(sdk.ttfc, 50), goal: { kind: 'max_diff', value: 2 } },
          { metric: `${tr} time to first chunk p99`, unit: 'ms', product: percentile(t.ttfc, 99), baseline: percentile(sdk.ttfc, 99) },
          { metric: `${tr} content rate, 1 stream`, unit: 'chars/s', product: charsPerSecond(t, sumDur(t)), baseline: charsPerSecond(sdk, sumDur(sdk)), goal: { kind: 'min_ratio', value: 0.8 } },
        );
      }
      // The orchestrator's own timers over the same requests (ws and sse together): when the first delta came
      // out of the SDK, and when the answer was complete. A client's first chunk close to the second means the
      // first chunk frame waited for the rest of the answer.
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
      out.rows.push(
        { metric: 'mean: ws+sse time to first chunk (client)', unit: 'ms', product: mean([...seq.ws!.ttfc, ...seq.sse!.ttfc]), baseline: mean(sdk.ttfc) },
        { metric: 'mean: orchestrator first delta from SDK', unit: 'ms', product: meanMsBetween(ttft0, ttft1), baseline: null },
        { metric: 'mean: orchestrator whole answer', unit: 'ms', product: meanMsBetween(run0, run1), baseline: mean(sdk.dur) },
      );
      out.details.one_stream = Object.fromEntries(
        Object.entries(seq).map(([k, t]) => [
          k,
          {
            requests: t.requests,
            errors: t.errors,
            chars_per_answer: t.chars / Math.max(1, t.dur.length),
            frames_per_answer: t.frames / Math.max(1, t.dur.length),
            ttfc_p50_ms: percentile(t.ttfc, 50),
            answer_ms_p50: percentile(t.dur, 50),
          },
        ]),
      );

      // B. Eight streams at once for a fixed time: the content and frame rates the whole machine sustains.
      await stack.profileSection('eight-streams');
      const conc = 8;
      const d = ctx.secs(6, 3) * 1000;
      const common: CpuProbe[] = [metricsProbe('mock-llm', stack.mockLlm.url), pidProbe('client', client.child.pid)];
      const productProbes: CpuProbe[] = [
        metricsProbe('gateway', stack.gateway.opsUrl),
        metricsProbe('orchestrator', stack.orchestrators[0]!.url),
        pidProbe('nats-server', stack.natsPid),
        redisProbe(() => stack.redis.info('cpu')),
        ...common,
      ];
      const loads: Record<string, LoadResult & { cpuMsPerAnswer: Record<string, number> }> = {};
      for (const name of ['sdk', 'ws', 'sse']) {
        ctx.log(`  ${conc} streams at once over ${name}, ${d / 1000} s`);
        const probes = name === 'sdk' ? common : productProbes;
        const before = await snapshot(probes);
        const r = await client.load({ target: targets[name]!, concurrency: conc, durationMs: d, maxRequests: 100_000, message, unique: true, warmup: 2 });
        const after = await snapshot(probes);
        const answers = r.requests - r.errors;
        loads[name] = {
          ...r,
          cpuMsPerAnswer: Object.fromEntries(Object.keys(after).map((k) => [k, ((after[k]! - before[k]!) * 1000) / Math.max(1, answers)])),
        };
        if (r.errors > 0) out.details[`errors_load_${name}`] = { count: r.errors, samples: r.errorSamples };
      }
      const base = loads.sdk!;
      for (const tr of ['ws', 'sse'] as const) {
        const l = loads[tr]!;
        out.rows.push(
          { metric: `${tr} content rate, ${conc} streams`, unit: 'chars/s', product: charsPerSecond(l, l.wallMs), baseline: charsPerSecond(base, base.wallMs), goal: { kind: 'min_ratio', value: 0.8 } },
          { metric: `${tr} frames/s, ${conc} streams`, unit: 'frames/s', product: (l.frames * 1000) / l.wallMs, baseline: (base.frames * 1000) / base.wallMs },
          {
            metric: `${tr} CPU/answer, servers`,
            unit: 'ms',
            product: ['gateway', 'orchestrator', 'nats-server', 'redis-server', 'mock-llm'].reduce((a, k) => a + (l.cpuMsPerAnswer[k] ?? 0), 0),
            baseline: base.cpuMsPerAnswer['mock-llm'] ?? null,
          },
        );
      }
      out.details.eight_streams = Object.fromEntries(
        Object.entries(loads).map(([k, l]) => [
          k,
          {
            answers: l.requests - l.errors,
            errors: l.errors,
            wall_s: l.wallMs / 1000,
            chars_per_s: charsPerSecond(l, l.wallMs),
            frames_per_s: (l.frames * 1000) / l.wallMs,
            frames_per_answer: l.frames / Math.max(1, l.requests - l.errors),
            answers_per_s: ((l.requests - l.errors) * 1000) / l.wallMs,
            cpu_ms_per_answer: l.cpuMsPerAnswer,
          },
        ]),
      );
      out.details.settings = { completion_tokens: TOKENS, ttft_ms: 0, tokens_per_second: 0, use_cache: false, concurrency: conc, model: DIRECT_MODEL };
    } finally {
      await client.stop();
      await stack.stop();
    }
  },
};
