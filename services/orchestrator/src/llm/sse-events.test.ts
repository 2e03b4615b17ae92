import { describe, expect, it } from 'vitest';
import { readSseData, type SseVerdict } from './sse-events.js';

/** A body that hands over the given network chunks, in order. */
function bodyOf(chunks: string[]): ReadableStream<Uint8Array> {
  const bytes = chunks.map((c) => new TextEncoder().encode(c));
  return new ReadableStream({
    pull(controller) {
      const next = bytes.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

/** SSE events with `sep` between them; the last one ends with a blank `\n\n` line (a lone CR could still become CRLF). */
const events = (datas: string[], sep = '\n\n') => datas.map((d, i) => `data: ${d}${i === datas.length - 1 ? '\n\n' : sep}`).join('');

describe('readSseData', () => {
  it('hands over every event in order, whatever the line endings and wherever the chunks are cut', async () => {
    for (const sep of ['\n\n', '\r\n\r\n', '\r\r']) {
      const text = events(['a', 'b', 'c', '[DONE]'], sep);
      for (let cut = 1; cut < text.length; cut += 3) {
        const seen: string[] = [];
        await readSseData(bodyOf([text.slice(0, cut), text.slice(cut)]), (d) => {
          seen.push(d);
          // A yield asked at the first event must not change what arrives.
          return seen.length === 1 ? 'yield' : d === '[DONE]';
        });
        expect(seen, `separator ${JSON.stringify(sep)}, cut at ${cut}`).toEqual(['a', 'b', 'c', '[DONE]']);
      }
    }
  });

  it('lets the event loop turn after the event that asks it, before the rest of the same chunk is parsed', async () => {
    const order: string[] = [];
    // One network chunk: the role event, the first token, then a burst.
    const body = bodyOf([events(['role', 'first', 'b', 'c', 'd'])]);
    await readSseData(body, (d): SseVerdict => {
      order.push(d);
      if (d !== 'first') return false;
      // What the first token sends (the bus's socket write) happens in a later turn: it runs before the burst.
      setImmediate(() => order.push('sent'));
      return 'yield';
    });
    expect(order).toEqual(['role', 'first', 'sent', 'b', 'c', 'd']);
  });

  it('yields once: the burst after the first yield is parsed in one go', async () => {
    const order: string[] = [];
    const body = bodyOf([events(['a', 'b', 'c'])]);
    await readSseData(body, (d) => {
      order.push(d);
      setImmediate(() => order.push(`turn after ${d}`));
      return 'yield';
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['a', 'turn after a', 'b', 'c', 'turn after b', 'turn after c']);
  });

  it('feeds event by event for the first 16 events at most: a later yield no longer splits its chunk, and nothing is lost', async () => {
    const order: string[] = [];
    const datas = Array.from({ length: 40 }, (_, i) => `e${i}`);
    await readSseData(bodyOf([events(datas)]), (d): SseVerdict => {
      order.push(d);
      if (d !== 'e20') return false;
      setImmediate(() => order.push('turn'));
      return 'yield';
    });
    await new Promise((resolve) => setImmediate(resolve));
    // The chunk's scan per event stops after 16 events (a stream without content must not pay it throughout):
    // the yield asked at e20 comes after the whole chunk.
    expect(order).toEqual([...datas, 'turn']);
  });

  it('stops at true and reads nothing after it', async () => {
    const seen: string[] = [];
    await readSseData(bodyOf([events(['a', 'stop', 'c']), events(['d'])]), (d) => {
      seen.push(d);
      return d === 'stop';
    });
    expect(seen).toEqual(['a', 'stop']);
  });
});
