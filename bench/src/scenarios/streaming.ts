import { record, type Scenario } from '../lib/context.js';
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
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Scenario 2: an uncached answer streamed through the platform (WebSocket, SSE) against the openai SDK reading mock-llm. */
export const streaming: Scenario = {
  id: 'streaming',
  title: `Streaming an uncached answer (${TOKENS} tokens, no delay between tokens)`,
  async run(ctx, out) {
    out.baseline = 'the openai SDK streaming from mock-llm directly (same mock, same answer length), same client process';
    const stack = await startBenchStack({ scenario: 'streaming', orchestrators: 1, profile: ctx.profile, firstSection: 'warm-up' });
    const client = await ClientProcess.start();
    try {
      await stack.mock({ ttft_ms: 0, tokens_per_second: 0, completion_tokens: TOKENS });
      const targets: Record<string, Target> = {
        sdk: { kind: 'sdk-stream', baseURL: `${stack.mockLlm.url}/v1`, model: DIRECT_MODEL, system: DIRECT_SYSTEM },
        ws: { kind: 'ws', url: `${stack.wsUrl}/ws/assistant/{session}?user_id={user}`, payload: { use_cache: false } },
        sse: { kind: 'sse', url: `${stack.url}/api/assistant/chat`, body: { user_id: 'bench-user', use_cache: false } },
      };
      const message = 'Explain spaced repetition with a worked example';

      // Each round: A, one stream at a time over ws, sse and the SDK in turns (request by request), then B, eight
      // streams at once for a fixed time over each target, the order of the three rotating from round to round.
      const orchUrl = stack.orchestrators[0]!.url;
      const timers = () => Promise.all([histTotals(orchUrl, 'ai_time_to_first_token_seconds'), histTotals(orchUrl, 'ai_request_latency_seconds')]);
      const conc = 8;
      const d = ctx.secs(5, 2) * 1000;
      const common: CpuProbe[] = [metricsProbe('mock-llm', stack.mockLlm.url), pidProbe('client', client.child.pid)];
      const productProbes: CpuProbe[] = [
        metricsProbe('gateway', stack.gateway.opsUrl),
        metricsProbe('orchestrator', stack.orchestrators[0]!.url),
        pidProbe('nats-server', stack.natsPid),
        redisProbe(() => stack.redis.info('cpu')),
        ...common,
      ];
      const perRound = ctx.count(60, 20);
      await client.seq({ targets, rounds: ctx.count(10, 3), maxMs: 20_000, message });
      const oneStream: Array<Record<string, unknown>> = [];
      const eightStreams: Array<Record<string, unknown>> = [];
      for (let r = 0; r < ctx.rounds; r++) {
        // Profiles (--profile): the two parts of the first round apart, the later rounds together.
        if (r <= 1) await stack.profileSection(r === 0 ? 'one-stream' : 'later-rounds');
        ctx.log(`  round ${r + 1}/${ctx.rounds}: one stream at a time (ws, sse, sdk in turns), ${perRound} each`);
        const [ttft0, run0] = await timers();
        const seq = await client.seq({ targets, rounds: perRound, maxMs: ctx.secs(12, 5) * 1000, message });
        const [ttft1, run1] = await timers();
        for (const [name, t] of Object.entries(seq)) {
          if (t.errors > 0) out.details[`errors_seq_${name}_round_${r + 1}`] = { count: t.errors, samples: t.errorSamples };
        }
        const sdk = seq.sdk!;
        for (const tr of ['ws', 'sse'] as const) {
          const t = seq[tr]!;
          if (t.ttfc.length === 0) throw new Error(`${tr}: no stream succeeded: ${t.errorSamples.join('; ')}`);
          record(
            out,
            r,
            { metric: `${tr} time to first chunk p50`, unit: 'ms', product: percentile(t.ttfc, 50), baseline: percentile(sdk.ttfc, 50), goal: { kind: 'max_diff', value: 2 } },
            { metric: `${tr} time to first chunk p99`, unit: 'ms', product: percentile(t.ttfc, 99), baseline: percentile(sdk.ttfc, 99) },
            { metric: `${tr} content rate, 1 stream`, unit: 'chars/s', product: charsPerSecond(t, sumDur(t)), baseline: charsPerSecond(sdk, sumDur(sdk)), goal: { kind: 'min_ratio', value: 0.8 } },
          );
        }
        // The orchestrator's own timers over the same requests (ws and sse together): when the first delta came
        // out of the SDK, and when the answer was complete. A client's first chunk close to the second means the
        // first chunk frame waited for the rest of the answer.
        record(
          out,
          r,
          { metric: 'mean: ws+sse time to first chunk (client)', unit: 'ms', product: mean([...seq.ws!.ttfc, ...seq.sse!.ttfc]), baseline: mean(sdk.ttfc) },
          { metric: 'mean: orchestrator first delta from SDK', unit: 'ms', product: meanMsBetween(ttft0, ttft1), baseline: null },
          { metric: 'mean: orchestrator whole answer', unit: 'ms', product: meanMsBetween(run0, run1), baseline: mean(sdk.dur) },
        );
        oneStream.push(
          Object.fromEntries(
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
          ),
        );

        if (r === 0) await stack.profileSection('eight-streams');
        const loads: Record<string, LoadResult & { cpuMsPerAnswer: Record<string, number> }> = {};
        const names = ['sdk', 'ws', 'sse'];
        for (let k = 0; k < names.length; k++) {
          const name = names[(r + k) % names.length]!;
          ctx.log(`  round ${r + 1}/${ctx.rounds}: ${conc} streams at once over ${name}, ${d / 1000} s`);
          const probes = name === 'sdk' ? common : productProbes;
          const before = await snapshot(probes);
          const res = await client.load({ target: targets[name]!, concurrency: conc, durationMs: d, maxRequests: 100_000, message, unique: true, warmup: r === 0 ? 2 : 1 });
          const after = await snapshot(probes);
          const answers = res.requests - res.errors;
          loads[name] = {
            ...res,
            cpuMsPerAnswer: Object.fromEntries(Object.keys(after).map((key) => [key, ((after[key]! - before[key]!) * 1000) / Math.max(1, answers)])),
          };
          if (res.errors > 0) out.details[`errors_load_${name}_round_${r + 1}`] = { count: res.errors, samples: res.errorSamples };
        }
        const base = loads.sdk!;
        for (const tr of ['ws', 'sse'] as const) {
          const l = loads[tr]!;
          record(
            out,
            r,
            { metric: `${tr} content rate, ${conc} streams`, unit: 'chars/s', product: charsPerSecond(l, l.wallMs), baseline: charsPerSecond(base, base.wallMs), goal: { kind: 'min_ratio', value: 0.8 } },
            { metric: `${tr} frames/s, ${conc} streams`, unit: 'frames/s', product: (l.frames * 1000) / l.wallMs, baseline: (base.frames * 1000) / base.wallMs },
            {
              metric: `${tr} CPU/answer, servers`,
              unit: 'ms',
              product: ['gateway', 'orchestrator', 'nats-server', 'redis-server', 'mock-llm'].reduce((a, key) => a + (l.cpuMsPerAnswer[key] ?? 0), 0),
              baseline: base.cpuMsPerAnswer['mock-llm'] ?? null,
            },
          );
        }
        eightStreams.push(
          Object.fromEntries(
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
          ),
        );
      }
      out.details.one_stream_rounds = oneStream;
      out.details.eight_streams_rounds = eightStreams;
      out.details.settings = { completion_tokens: TOKENS, ttft_ms: 0, tokens_per_second: 0, use_cache: false, concurrency: conc, eight_streams_s: d / 1000, one_stream_requests_per_round: perRound, model: DIRECT_MODEL };
    } finally {
      await client.stop();
      await stack.stop();
    }
  },
};
