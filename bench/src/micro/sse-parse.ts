/**
 * node bench/dist/micro/sse-parse.js [--rounds=300]
 *
 * What reading a streamed completion costs when a provider writes many events at once: a burst of N
 * `chat.completion.chunk` events in one network chunk, parsed by the `openai` SDK's own stream reader
 * (`Stream.fromSSEResponse`, what `for await (const chunk of stream)` runs) and by the orchestrator's
 * (`readSseData`: eventsource-parser, then JSON.parse per event). Both produce the same parsed objects.
 * In one process, interleaved round by round; prints µs per burst and per event for several burst sizes.
 */
import { Stream } from 'openai/streaming';
import { readSseData } from '@actionedx/orchestrator';

const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 300);
const SIZES = [50, 400, 1600];

function burst(events: number): Uint8Array {
  let text = '';
  for (let i = 0; i < events; i++) {
    const chunk = {
      id: 'chatcmpl-0123456789abcdef01234567',
      object: 'chat.completion.chunk',
      created: 1_700_000_000,
      model: 'gpt-4o-mini',
      system_fingerprint: 'fp_mock_llm',
      choices: [{ index: 0, delta: { content: `word${i} ` }, logprobs: null, finish_reason: null }],
      usage: null,
    };
    text += `data: ${JSON.stringify(chunk)}\n\n`;
  }
  return new TextEncoder().encode(`${text}data: [DONE]\n\n`);
}

/** A fetch Response whose body delivers `bytes` as one chunk, as a socket read of a burst does. */
const responseOf = (bytes: Uint8Array) =>
  new Response(
    new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes);
        c.close();
      },
    }),
  );

async function sdk(bytes: Uint8Array): Promise<number> {
  let n = 0;
  for await (const _ of Stream.fromSSEResponse<unknown>(responseOf(bytes), new AbortController())) n++;
  return n;
}

async function ours(bytes: Uint8Array): Promise<number> {
  let n = 0;
  await readSseData(responseOf(bytes).body!, (data) => {
    if (data === '[DONE]') return true;
    JSON.parse(data);
    n++;
    return false;
  });
  return n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`SSE parse of one burst, ${rounds} rounds per size (median; µs)`);
console.log('events | openai SDK stream | eventsource-parser | SDK ÷ ours | SDK µs/event | ours µs/event');
for (const size of SIZES) {
  const bytes = burst(size);
  const got = [await sdk(bytes), await ours(bytes)];
  if (got[0] !== size || got[1] !== size) throw new Error(`parsed ${got.join(' and ')} events, expected ${size}`);
  for (let i = 0; i < 20; i++) await Promise.all([sdk(bytes), ours(bytes)]); // warm-up
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let t = performance.now();
    await sdk(bytes);
    a.push((performance.now() - t) * 1000);
    t = performance.now();
    await ours(bytes);
    b.push((performance.now() - t) * 1000);
  }
  const [ma, mb] = [median(a), median(b)];
  console.log(
    `${String(size).padStart(6)} | ${ma.toFixed(0).padStart(17)} | ${mb.toFixed(0).padStart(18)} | ${(ma / mb).toFixed(2).padStart(10)} | ${(ma / size).toFixed(2).padStart(12)} | ${(mb / size).toFixed(2).padStart(13)}`,
  );
}
