/**
 * Baseline of the miss-throughput scenario, back half: takes NATS requests in a queue group and answers each with
 * one streamed model call through the `openai` SDK, the call the orchestrator makes (same options: stream with
 * usage, max_tokens, an abort signal), concatenating the deltas and replying `{"response": text}` (an empty reply
 * when the call fails). Nothing else:
 * no validation, cache, single flight, frames, metrics or logs.
 * Env: NATS_URL, OPENAI_BASE_URL, MODEL, SYSTEM, MAX_TOKENS, SUBJECT.
 */
import { connect } from '@nats-io/transport-node';
import OpenAI from 'openai';

const openai = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL!, apiKey: 'bench', maxRetries: 0, timeout: 30_000 });
const model = process.env.MODEL ?? 'gpt-4o-mini';
const system = process.env.SYSTEM ?? '';
const maxTokens = Number(process.env.MAX_TOKENS ?? 600);
const encoder = new TextEncoder();

async function answer(message: string): Promise<string> {
  const stream = await openai.chat.completions.create(
    {
      model,
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: message },
      ],
      max_tokens: maxTokens,
      stream: true,
      stream_options: { include_usage: true },
    },
    { signal: AbortSignal.timeout(30_000) },
  );
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  return text;
}

const nc = await connect({ servers: process.env.NATS_URL!, name: 'bench-baseline-miss-worker' });
nc.subscribe(process.env.SUBJECT ?? 'bench.baseline.miss', {
  queue: 'bench-workers',
  callback: (err, m) => {
    if (err) return;
    let message = '';
    try {
      message = String(m.json<{ message?: unknown }>().message ?? '');
    } catch {
      /* not JSON: answer the empty message */
    }
    answer(message).then(
      (text) => m.respond(encoder.encode(JSON.stringify({ response: text }))),
      // An empty reply: the front answers 502 and wrk counts an error.
      () => m.respond(new Uint8Array()),
    );
  },
});
await nc.flush();
process.send!({ ready: true });
process.on('SIGTERM', () => {
  void nc.close().finally(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
