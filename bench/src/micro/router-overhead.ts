/**
 * node bench/dist/micro/router-overhead.js [--rounds=400]
 *
 * What the resilience layer adds to one model call on the miss path: a streamed 48-token answer from mock-llm
 * (a process of its own, first token at once), read
 *   - directly with the openai SDK (`create({stream: true})`, `for await`): the model client before the router;
 *   - through ModelRouter with today's default routing (one target: breaker, limiter, watchdog, linear SSE);
 *   - through ModelRouter with two targets and a hedge delay armed (never reached).
 * Interleaved call by call in one client process; prints median, p90 and p99 in ms, and the differences.
 */
import OpenAI from 'openai';
import { createAiMetrics, createLogger, createMetricsRegistry, TASK_TYPES, type TaskType } from '@actionedx/shared';
import { createRouterMetrics, ModelRouter, resolveRouting } from '@actionedx/orchestrator';
import { startService } from '@actionedx/testkit';

const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 400);
const mock = await startService('mock-llm', { MOCK_LLM_COMPLETION_TOKENS: '48' });
const baseURL = `${mock.url}/v1`;
const messages = [
  { role: 'system' as const, content: 'You are a tutor. End with "Suggestions:" and two lines starting with "- ".' },
  { role: 'user' as const, content: 'What is retrieval practice?' },
];

try {
  const client = new OpenAI({ baseURL, apiKey: 'x', maxRetries: 0 });
  const direct = async () => {
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 600, stream: true, stream_options: { include_usage: true } });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    return text;
  };

  const registry = createMetricsRegistry('orchestrator', { defaultMetrics: false });
  const deps = { metrics: createRouterMetrics(registry), upstreamErrors: createAiMetrics(registry).upstreamErrors, logger: createLogger({ service: 'bench', version: 'bench', level: 'silent' }), defaultBaseUrl: baseURL };
  const models = Object.fromEntries(TASK_TYPES.map((t) => [t, 'gpt-4o-mini'])) as Record<TaskType, string>;
  const base = { models, apiKey: 'x', timeoutMs: 60_000, maxRetries: 2 };
  const single = new ModelRouter(resolveRouting({}, base), deps);
  const hedged = new ModelRouter(
    resolveRouting(
      {
        MODEL_TARGETS: JSON.stringify({
          targets: { a: { base_url: baseURL, model: 'gpt-4o-mini' }, b: { base_url: baseURL, model: 'gpt-4o' } },
          routes: { realtime_tutoring: { targets: ['a', 'b'], hedge_after_ms: 1000 } },
        }),
      },
      base,
    ),
    deps,
  );
  const routed = (router: ModelRouter) => async () => {
    let text = '';
    await router.complete({ taskType: 'realtime_tutoring', messages, maxTokens: 600, signal: new AbortController().signal, onDelta: (d) => (text += d), onReset: () => (text = '') });
    return text;
  };

  const sides: [string, () => Promise<string>][] = [
    ['SDK direct (before)', direct],
    ['router, default routing', routed(single)],
    ['router, 2 targets + hedge armed', routed(hedged)],
  ];
  const texts = await Promise.all(sides.map(([, f]) => f()));
  if (new Set(texts).size !== 1 || !texts[0]) throw new Error('the sides answered differently');
  for (let i = 0; i < 30; i++) for (const [, f] of sides) await f();
  const times = sides.map(() => [] as number[]);
  for (let i = 0; i < rounds; i++) {
    for (const [k, [, f]] of sides.entries()) {
      const t = performance.now();
      await f();
      times[k]!.push(performance.now() - t);
    }
  }
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
  console.log(`one streamed 48-token answer from mock-llm, ${rounds} interleaved rounds (ms)`);
  console.log('side                              |   p50 |   p90 |   p99 | p50 − direct | p99 − direct');
  for (const [k, [name]] of sides.entries()) {
    const xs = times[k]!;
    const d = times[0]!;
    console.log(
      `${name.padEnd(33)} | ${q(xs, 50).toFixed(2).padStart(5)} | ${q(xs, 90).toFixed(2).padStart(5)} | ${q(xs, 99).toFixed(2).padStart(5)} | ${(q(xs, 50) - q(d, 50)).toFixed(2).padStart(12)} | ${(q(xs, 99) - q(d, 99)).toFixed(2).padStart(12)}`,
    );
  }
} finally {
  await mock.stop();
}
