import type { ServerResponse } from 'node:http';

/**
 * Writes `text` and resolves once it is handed to the OS, which bounds memory with a slow reader and lets a
 * fault cut the connection knowing what went out. Rejects when `signal` aborts (the client left).
 */
export function writeFlushed(res: ServerResponse, text: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    res.write(text, (err) => {
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    });
  });
}

/** Server-Sent Events of JSON data, the framing the `openai` SDK reads a stream with. */
export class SseWriter {
  constructor(
    private readonly res: ServerResponse,
    private readonly signal: AbortSignal,
  ) {}

  open(): void {
    this.res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  }

  /** One event per object, batched into a single write. */
  async send(events: readonly unknown[]): Promise<void> {
    if (events.length === 0) return;
    await writeFlushed(this.res, events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join(''), this.signal);
  }

  /** The sentinel the SDK stops on, then a clean end. */
  done(): void {
    this.res.end('data: [DONE]\n\n');
  }
}
