import {
  encodeFrame,
  type Bus,
  type BusHeaders,
  type BusMetrics,
  type DoneFrame,
  type ErrorFrame,
  type Frame,
} from '@actionedx/shared';

type DoneFields = Omit<DoneFrame, 'type' | 'request_id' | 'attempt' | 'chunks'>;

/** A batch of deltas goes out when it is this old (ms) or this long (characters), or at the end of the turn. */
const MAX_BATCH_MS = 2;
const MAX_BATCH_CHARS = 4096;

/**
 * The frames of one request, in order: chunks (seq from 0, no gaps), heartbeats while idle, and exactly
 * one terminal frame. The first delta goes out at once; later deltas that arrive within one event-loop
 * turn (cut at 2 ms or 4 KiB) go out as one chunk frame: a bus message per token would cost several times
 * more than the tokens themselves.
 */
export class FrameStream {
  private seq = 0;
  private pending = '';
  private flushScheduled = false;
  private lastFlushAt = performance.now();
  private ended = false;
  private lastSentAt = Date.now();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly subject: string,
    private readonly requestId: string,
    private readonly attempt: number,
    private readonly headers: BusHeaders,
    private readonly heartbeatMs: number,
    private readonly metrics?: BusMetrics,
  ) {
    this.armHeartbeat(heartbeatMs);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Chunks sent so far. */
  get chunks(): number {
    return this.seq;
  }

  write(delta: string): void {
    if (this.ended || delta.length === 0) return;
    this.pending += delta;
    // The first words go out at once: time to first chunk is what a reader feels most.
    if (this.seq === 0) return this.flush();
    // An SDK hands over every event it has buffered without yielding to the event loop,
    // so a batch is also cut by size and age, not only at the end of the turn.
    if (this.pending.length >= MAX_BATCH_CHARS || performance.now() - this.lastFlushAt >= MAX_BATCH_MS) return this.flush();
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushLater);
    }
  }

  done(fields: DoneFields): void {
    if (this.ended) return;
    this.flush();
    this.finish({ type: 'done', request_id: this.requestId, attempt: this.attempt, chunks: this.seq, ...fields });
  }

  error(code: string, message: string, retryable: boolean): void {
    if (this.ended) return;
    // Chunks already written are sent first, so the receiver sees a coherent stream before the error.
    this.flush();
    const frame: ErrorFrame = { type: 'error', request_id: this.requestId, attempt: this.attempt, code, message, retryable };
    this.finish(frame);
  }

  private readonly flushLater = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  private flush(): void {
    if (this.ended || this.pending.length === 0) return;
    const delta = this.pending;
    this.pending = '';
    this.lastFlushAt = performance.now();
    this.send({ type: 'chunk', request_id: this.requestId, attempt: this.attempt, seq: this.seq++, delta });
  }

  private finish(frame: Frame): void {
    this.ended = true;
    clearTimeout(this.heartbeat);
    this.send(frame);
  }

  private send(frame: Frame): void {
    this.lastSentAt = Date.now();
    this.metrics?.frames.inc({ type: frame.type, direction: 'out' });
    try {
      this.bus.publish(this.subject, encodeFrame(frame), { headers: this.headers });
    } catch {
      // A closed bus loses the frame; the gateway's watchdog notices and retries elsewhere.
    }
  }

  /** One timer per request, re-armed only when it fires, never per chunk. */
  private armHeartbeat(delayMs: number): void {
    this.heartbeat = setTimeout(() => {
      if (this.ended) return;
      const idle = Date.now() - this.lastSentAt;
      if (idle >= this.heartbeatMs) {
        this.send({ type: 'heartbeat', request_id: this.requestId, attempt: this.attempt });
        this.armHeartbeat(this.heartbeatMs);
      } else {
        this.armHeartbeat(this.heartbeatMs - idle);
      }
    }, delayMs);
    this.heartbeat.unref();
  }
}
