import { AppError, decodeFrames, isErrorCode, type ChatResponse, type DoneFrame, type Frame, type ResumeFailureCode } from '@actionedx/shared';

/** What a resuming client is sent, whatever its transport. */
export interface ResumeSink {
  /** A chunk the client has not had, in order. */
  chunk(content: string, seq: number): void;
  /** The chunks the client has are void: the whole answer follows again from `seq` 0. */
  reset(): void;
  /** The answer is complete: `stream_end` and `response`. */
  end(response: ChatResponse): void;
  /** The answer cannot be replayed (`resume_failed`); `response` is the final answer when it is known. */
  failed(code: ResumeFailureCode, response?: ChatResponse): void;
  /** The answer failed (as an uninterrupted client would have been told). */
  error(err: AppError): void;
}

/** Worker errors the dispatching gateway retries on another worker: the answer may still come. */
const RETRIED_BY_THE_GATEWAY: ReadonlySet<string> = new Set(['shutting_down', 'worker_lost', 'internal', 'bus_unavailable']);

/**
 * The outcome of feeding one message to a replay: go on; ended (the sink was told); the answer is done but its text
 * must come from the answer record (`need_final`: the client has every chunk, the log lacks the first ones;
 * `expired`: the client misses chunks the log no longer has).
 */
export type ReplayStep = 'more' | 'ended' | 'need_final' | 'expired';

/**
 * One answer read back from the log for a client that has its chunks up to `lastSeq`: the frames in log order
 * (every attempt and delivery of the request, as the workers sent them), followed as the dispatching gateway
 * follows them. A newer attempt or delivery, or a `reset`, starts the answer again: the client is told
 * (`reset`) and gets it from `seq` 0. Chunks it has are skipped, the others sent once each, in order.
 * A chunk the log no longer has (its head aged out, past the per-answer bound) ends the replay as expired.
 */
export class AnswerReplay {
  private attempt = -1;
  private delivery = 0;
  /** The next chunk's `seq` in the current answer; undefined until a chunk or a start of answer is seen. */
  private nextSeq: number | undefined;
  /** The chunks of the current answer from `firstSeq` on. */
  private parts: string[] = [];
  private firstSeq = 0;
  /** The client has chunks up to this `seq` of the current answer. */
  private sentUpTo: number;
  /** Chunks were sent to the client in this replay, or the client had some: a restart must be announced. */
  private clientHasChunks: boolean;
  private lost = false;
  /** A `queued` frame: no worker is on it yet (only the deadline runs). */
  queued = false;

  constructor(
    private readonly requestId: string,
    lastSeq: number,
    private readonly sink: ResumeSink,
  ) {
    this.sentUpTo = lastSeq;
    this.clientHasChunks = lastSeq >= 0;
  }

  /** Whether chunks the client needs are gone: the rest only follows to learn when the answer is done. */
  get expired(): boolean {
    return this.lost;
  }

  /** One message of the log: a frame or a batch of frames. */
  feed(data: Uint8Array): ReplayStep {
    let frames: Frame[];
    try {
      frames = decodeFrames(data);
    } catch {
      return 'more'; // the dispatching gateway drops it too
    }
    for (const f of frames) {
      const step = this.onFrame(f);
      if (step !== 'more') return step;
    }
    return 'more';
  }

  private onFrame(f: Frame): ReplayStep {
    if (f.request_id !== this.requestId) return 'more';
    if (f.attempt < this.attempt) return 'more';
    const delivery = f.delivery ?? 0;
    if (f.attempt > this.attempt) {
      const first = this.attempt < 0;
      this.attempt = f.attempt;
      this.delivery = delivery;
      if (!first) this.restart();
    } else if (delivery !== this.delivery) {
      if (delivery < this.delivery) return 'more';
      this.delivery = delivery;
      this.restart();
    }
    if (f.type !== 'queued') this.queued = false;
    switch (f.type) {
      case 'ack':
        // An attempt begins with its ack: its answer starts at seq 0.
        if (this.nextSeq === undefined) this.nextSeq = 0;
        return 'more';
      case 'chunk':
        return this.onChunk(f.seq, f.delta);
      case 'reset':
        this.restart();
        return 'more';
      case 'done':
        return this.onDone(f);
      case 'error':
        if (f.retryable && RETRIED_BY_THE_GATEWAY.has(f.code)) return 'more';
        this.sink.error(isErrorCode(f.code) ? new AppError(f.code, f.message) : new AppError('internal'));
        return 'ended';
      case 'queued':
        this.queued = true;
        return 'more';
      default:
        return 'more';
    }
  }

  private onChunk(seq: number, delta: string): ReplayStep {
    if (this.lost) return 'more';
    if (this.nextSeq === undefined) {
      // The log starts inside this answer (its first frames aged out): fine when the client has those chunks.
      if (seq > this.sentUpTo + 1) return this.lose();
      this.nextSeq = seq;
      this.firstSeq = seq;
    }
    if (seq < this.nextSeq) return 'more';
    if (seq > this.nextSeq) return this.lose(); // a message the log did not keep
    this.nextSeq = seq + 1;
    this.parts.push(delta);
    if (seq > this.sentUpTo) {
      this.sentUpTo = seq;
      this.clientHasChunks = true;
      this.sink.chunk(delta, seq);
    }
    return 'more';
  }

  private onDone(f: DoneFrame): ReplayStep {
    const next = this.nextSeq ?? 0;
    // A count that does not match: the dispatching gateway retries it on another worker, whose frames follow.
    if (f.chunks !== next && !this.lost) return 'more';
    if (this.lost || this.sentUpTo < next - 1) return 'expired';
    // The whole text is known here only when the log had the answer from its first chunk.
    if (this.firstSeq !== 0) return 'need_final';
    this.sink.end({
      response: this.parts.join(''),
      suggestions: f.suggestions,
      model: f.model,
      mode: f.mode,
      task_type: f.task_type,
      cached: f.cached,
      request_id: this.requestId,
      usage: f.usage,
      cost_usd: f.cost_usd,
      latency_ms: f.latency_ms,
    });
    return 'ended';
  }

  /** Chunks the client needs are gone: nothing more is sent until the end tells what the client gets. */
  private lose(): ReplayStep {
    this.lost = true;
    return 'more';
  }

  /**
   * A new attempt, delivery or reset: the answer starts again. When the log had chunks of the previous one, the
   * client is told (if it had any) and gets the new answer from `seq` 0. When it had none (the lookup lane's ack and
   * `queued`, then the model lane's delivery), the client's chunks are of the answer that starts now.
   */
  private restart(): void {
    const hadChunks = (this.nextSeq ?? 0) > 0 || this.lost;
    this.lost = false;
    this.parts = [];
    this.nextSeq = hadChunks ? 0 : undefined;
    this.firstSeq = 0;
    if (!hadChunks) return;
    this.sentUpTo = -1;
    if (this.clientHasChunks) {
      this.clientHasChunks = false;
      this.sink.reset();
    }
  }
}
