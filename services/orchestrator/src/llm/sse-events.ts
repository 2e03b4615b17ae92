import { createParser } from 'eventsource-parser';

/** A streamed response body, as `fetch` (and so the `openai` SDK's `asResponse()`) gives it. */
export interface ByteStream {
  getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(reason?: unknown): Promise<void>; releaseLock(): void };
}

/**
 * Reads a Server-Sent Events body and hands the `data` of each event to `onData`, in order, until the body ends
 * or `onData` returns true (then the rest is cancelled, which closes the connection unless it was already done).
 *
 * `eventsource-parser` scans each network chunk once with `indexOf` and keeps a partial line as fragments, so
 * the work is linear in the body: a burst of hundreds of events in one chunk costs what the events cost.
 */
export async function readSseData(body: ByteStream, onData: (data: string) => boolean | void): Promise<void> {
  const decoder = new TextDecoder();
  let stop = false;
  const parser = createParser({
    onEvent: (event) => {
      if (!stop && onData(event.data) === true) stop = true;
    },
  });
  const reader = body.getReader();
  try {
    while (!stop) {
      const { done, value } = await reader.read();
      if (done) {
        // An event cut off before its blank line is dropped, as the SSE specification says.
        parser.feed(decoder.decode());
        return;
      }
      parser.feed(decoder.decode(value, { stream: true }));
    }
    // The body almost always ends right after the last event: reading that end lets the connection go back to
    // the pool (keep-alive). A body that goes on is cancelled, which closes the connection.
    const tail = await Promise.race([reader.read(), new Promise<undefined>((r) => setImmediate(() => r(undefined)))]);
    if (!tail?.done) await reader.cancel().catch(() => {});
  } finally {
    reader.releaseLock();
  }
}
