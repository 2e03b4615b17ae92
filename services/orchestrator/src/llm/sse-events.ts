import { createParser } from 'eventsource-parser';

/** A streamed response body, as `fetch` (and so the `openai` SDK's `asResponse()`) gives it. */
export interface ByteStream {
  getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(reason?: unknown): Promise<void>; releaseLock(): void };
}

/**
 * What `onData` says after an event: `true` stops the read; `'yield'` lets the event loop turn before the next event
 * (what this one produced, a first token, goes out before the rest of its network chunk is parsed); else go on.
 */
export type SseVerdict = boolean | 'yield' | void;

/**
 * Events fed one at a time at most, waiting for the first `yield`: a stream's first token comes within its first few
 * events, and a stream that has none (no content at all) must not pay a scan of its chunk per event.
 */
const EVENT_BY_EVENT_MAX = 16;

/** Index just past the first blank line (the end of an event) in `text`, or -1. */
function eventEnd(text: string): number {
  let end = -1;
  for (const sep of ['\n\n', '\r\n\r\n', '\r\r']) {
    const i = text.indexOf(sep);
    if (i >= 0 && (end < 0 || i + sep.length < end)) end = i + sep.length;
  }
  return end;
}

/**
 * Reads a Server-Sent Events body and hands the `data` of each event to `onData`, in order, until the body ends
 * or `onData` returns true (then the rest is cancelled, which closes the connection unless it was already done).
 *
 * `eventsource-parser` scans each network chunk once with `indexOf` and keeps a partial line as fragments, so
 * the work is linear in the body: a burst of hundreds of events in one chunk costs what the events cost. Until
 * `onData` first asks to yield (at most for the first 16 events), chunks are fed an event at a time, so that the
 * first token is sent on before a burst behind it in the same chunk is parsed.
 */
export async function readSseData(body: ByteStream, onData: (data: string) => SseVerdict): Promise<void> {
  const decoder = new TextDecoder();
  let stop = false;
  let yieldAsked = false;
  /** Events fed one at a time so far; at EVENT_BY_EVENT_MAX (or at the first yield) whole chunks again. */
  let fedAlone = 0;
  const parser = createParser({
    onEvent: (event) => {
      if (stop) return;
      const verdict = onData(event.data);
      if (verdict === true) stop = true;
      else if (verdict === 'yield') yieldAsked = true;
    },
  });
  const feed = async (text: string): Promise<void> => {
    while (fedAlone < EVENT_BY_EVENT_MAX && !stop) {
      const end = eventEnd(text);
      if (end < 0) break;
      parser.feed(text.slice(0, end));
      text = text.slice(end);
      fedAlone++;
      if (yieldAsked) {
        fedAlone = EVENT_BY_EVENT_MAX;
        if (text.length > 0 && !stop) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    if (!stop && text.length > 0) parser.feed(text);
  };
  const reader = body.getReader();
  try {
    while (!stop) {
      const { done, value } = await reader.read();
      if (done) {
        // An event cut off before its blank line is dropped, as the SSE specification says.
        parser.feed(decoder.decode());
        return;
      }
      await feed(decoder.decode(value, { stream: true }));
    }
    // The body almost always ends right after the last event: reading that end lets the connection go back to
    // the pool (keep-alive). A body that goes on is cancelled, which closes the connection.
    const tail = await Promise.race([reader.read(), new Promise<undefined>((r) => setImmediate(() => r(undefined)))]);
    if (!tail?.done) await reader.cancel().catch(() => {});
  } finally {
    reader.releaseLock();
  }
}
