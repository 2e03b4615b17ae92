import type { Response } from 'express';

/** Proxies close idle connections; a comment line now and then keeps a slow answer's stream open. */
const KEEP_ALIVE_MS = 15_000;

/** Server-Sent Events on one response: each event is flushed by the end of the tick it came in. */
export class SseStream {
  private opened = false;
  private corked = false;
  private keepAlive: NodeJS.Timeout | undefined;

  constructor(private readonly res: Response) {}

  get isOpen(): boolean {
    return this.opened;
  }

  open(): void {
    if (this.opened) return;
    this.opened = true;
    const res = this.res;
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    // nginx buffers proxied responses unless told otherwise.
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    this.keepAlive = setInterval(() => this.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
    this.keepAlive.unref();
  }

  /** `data` is JSON on one line (JSON.stringify escapes every newline); `id` lets a client resume (`Last-Event-ID`). */
  send(event: string, data: unknown, id?: string): void {
    this.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** An unnamed event (`data:` only), as OpenAI-style streams have them; a string goes as it is, anything else as JSON. */
  data(payload: unknown): void {
    this.write(`data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`);
  }

  end(): void {
    if (this.keepAlive !== undefined) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
    if (!this.res.writableEnded) this.res.end();
  }

  private write(text: string): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    // Events of one tick (a bus read can hold many chunks) leave in one write, not one system call each.
    if (!this.corked) {
      this.corked = true;
      this.res.cork();
      process.nextTick(this.uncork);
    }
    this.res.write(text);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.res.uncork();
  };
}
