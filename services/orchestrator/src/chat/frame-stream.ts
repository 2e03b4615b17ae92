import {
  encodeFrames,
  RetainedFrames,
  type Bus,
  type BusHeaders,
  type BusMetrics,
  type DoneFrame,
  type ErrorFrame,
  type Frame,
  type QueuedFrame,
} from '@actionedx/shared';

type DoneFields = Omit<DoneFrame, 'type' | 'request_id' | 'attempt' | 'chunks'>;

/** A batch of deltas goes out when it is this old (ms) or this long (characters), or at the end of the turn. */
const MAX_BATCH_MS = 2;
const MAX_BATCH_CHARS = 4096;
/**
 * The ack waits this long for the first frame, to leave in the same socket write (a cached answer is
 * ready in well under a millisecond); a slower answer is acked when the wait ends.
 */
const ACK_DEFER_MS = 5;

export interface FrameStreamOptions {
  bus: Bus;
  /** Where the frames go (the job's `reply_to`). */
  subject: string;
  requestId: string;
  attempt: number;
  headers: BusHeaders;
  /** Idle time after which a heartbeat is sent. */
  heartbeatMs: number;
  /** This worker's id: an ack naming it goes first, with the first frame or after a short wait. */
  ack?: { workerId: string };
  /** The model lane's delivery of a queued job (from 1): carried by every frame. */
  delivery?: number;
  metrics?: BusMetrics;
}

/**
 * The frames of one request, in order: the ack, chunks (seq from 0, no gaps; again from 0 after a `reset`),
 * heartbeats while idle, and exactly one terminal frame. The first delta goes out at once; later deltas that arrive within one
 * event-loop turn (cut at 2 ms or 4 KiB) go out as one chunk frame: a bus message per token would cost
 * several times more than the tokens themselves. Frames made in the same microtask travel as one message
 * (a cached answer is one: ack, chunk, done). A copy of every frame goes to the answer's retained subject in
 * batches (`RetainedFrames`), for resumes.
 */
export class FrameStream {
  private seq = 0;
  private pending = '';
  private flushScheduled = false;
  private lastFlushAt = performance.now();
  private ended = false;
  private acked: boolean;
  private lastSentAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private outbox: Frame[] = [];
  /** The copy kept for resumes, when the frames go to a gateway's frame subject. */
  private readonly retained: RetainedFrames | undefined;
  private delivery: number | undefined;

  constructor(private readonly o: FrameStreamOptions) {
    this.acked = o.ack === undefined;
    this.delivery = o.delivery;
    this.retained = RetainedFrames.forReplyTo(o.subject, (subject, data) => o.bus.publish(subject, data));
    this.arm(this.acked ? o.heartbeatMs : Math.min(ACK_DEFER_MS, o.heartbeatMs));
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

  /**
   * The chunks sent so far are void (the model failed mid-answer, another one answers): a `reset` frame, and
   * the next chunk is `seq` 0 again. Nothing is sent when no chunk went out yet: that fallback stays invisible.
   */
  reset(): void {
    if (this.ended) return;
    this.pending = '';
    if (this.seq === 0) return;
    this.seq = 0;
    this.send({ type: 'reset', request_id: this.o.requestId, attempt: this.o.attempt });
  }

  done(fields: DoneFields): void {
    if (this.ended) return;
    this.flush();
    this.finish({ type: 'done', request_id: this.o.requestId, attempt: this.o.attempt, chunks: this.seq, ...fields });
  }

  error(code: string, message: string, retryable: boolean, retryAfterMs?: number): void {
    if (this.ended) return;
    // Chunks already written are sent first, so the receiver sees a coherent stream before the error.
    this.flush();
    const frame: ErrorFrame = { type: 'error', request_id: this.o.requestId, attempt: this.o.attempt, code, message, retryable };
    if (retryAfterMs !== undefined) frame.retry_after_ms = retryAfterMs;
    this.finish(frame);
  }

  /** The lookup lane's last frame for a job it queued: the model lane sends the rest. */
  queued(fields: Omit<QueuedFrame, 'type' | 'request_id' | 'attempt'>): void {
    if (this.ended) return;
    this.flush();
    this.finish({ type: 'queued', request_id: this.o.requestId, attempt: this.o.attempt, ...fields });
  }

  /** Ends without a terminal frame: the job goes back to the queue and another delivery answers. */
  abandon(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.retained?.flush();
  }

  /**
   * The frames from here on are the model lane's `delivery` of the job: the lookup lane runs a miss in a free
   * model slot itself (the queue was empty) and answers as the queue's first delivery would.
   */
  runAsDelivery(delivery: number): void {
    this.delivery = delivery;
  }

  get isEnded(): boolean {
    return this.ended;
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
    this.send({ type: 'chunk', request_id: this.o.requestId, attempt: this.o.attempt, seq: this.seq++, delta });
  }

  private finish(frame: Frame): void {
    this.ended = true;
    clearTimeout(this.timer);
    this.send(frame);
  }

  private sendAck(): void {
    this.acked = true;
    const { ack, requestId, attempt } = this.o;
    this.enqueue({ type: 'ack', request_id: requestId, attempt, worker_id: ack!.workerId });
  }

  private send(frame: Frame): void {
    if (!this.acked) this.sendAck();
    this.enqueue(frame);
  }

  private enqueue(frame: Frame): void {
    if (this.delivery !== undefined) frame.delivery = this.delivery;
    this.lastSentAt = Date.now();
    this.o.metrics?.frames.inc({ type: frame.type, direction: 'out' });
    this.outbox.push(frame);
    if (this.outbox.length === 1) queueMicrotask(this.publishOutbox);
  }

  private readonly publishOutbox = (): void => {
    const frames = this.outbox;
    this.outbox = [];
    const data = encodeFrames(frames);
    try {
      this.o.bus.publish(this.o.subject, data, { headers: this.o.headers });
    } catch {
      // A closed bus loses the frames; the gateway's watchdog notices and retries elsewhere.
    }
    this.retained?.add(frames, this.ended, data);
  };

  /** One timer per request (the deferred ack, then heartbeats), re-armed only when it fires, never per chunk. */
  private arm(delayMs: number): void {
    this.timer = setTimeout(() => {
      if (this.ended) return;
      if (!this.acked) this.sendAck();
      const idle = Date.now() - this.lastSentAt;
      if (idle >= this.o.heartbeatMs) {
        this.enqueue({ type: 'heartbeat', request_id: this.o.requestId, attempt: this.o.attempt });
        this.arm(this.o.heartbeatMs);
      } else {
        this.arm(this.o.heartbeatMs - idle);
      }
    }, delayMs);
    this.timer.unref();
  }
}
