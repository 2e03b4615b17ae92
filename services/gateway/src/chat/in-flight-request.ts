import {
  AppError,
  BusClosedError,
  BusNoRespondersError,
  BusTimeoutError,
  Headers,
  Subjects,
  encodeJson,
  isErrorCode,
  toAppError,
  type Bus,
  type BusHeaders,
  type ChatJobInput,
  type ChatRequest,
  type DoneFrame,
  type ErrorFrame,
  type Frame,
  type Logger,
  type QueuedChatJob,
} from '@actionedx/shared';
import type { ChatOutcome, DispatchListener } from './dispatch-types.js';
import type { FrameTarget } from './frame-router.js';

/** Why a request went to another worker (the `reason` label of bus_request_retries_total). */
export type RetryReason = 'no_ack' | 'worker_lost' | 'sequence_gap' | 'chunk_mismatch' | 'retryable_error' | 'redelivered' | 'queued_directly';

/** Why the gateway told workers to stop (the `reason` of the cancel message). */
export type CancelReason = 'client_gone' | 'deadline' | 'shutdown' | 'gave_up' | 'superseded';

/** After a bus outage, a queued job is published again this many times at most, this far apart. */
const REQUEUE_TRIES = 30;
const REQUEUE_PAUSE_MS = 500;

/** Worker errors another worker may not repeat; model errors are the worker's to retry, not ours. */
const RETRY_ON_WORKER_ERROR: ReadonlySet<string> = new Set(['shutting_down', 'worker_lost', 'internal', 'bus_unavailable']);

type Counted = { inc(): void };
type Observed = { observe(value: number): void };

/** What an in-flight request needs from its dispatcher. */
export interface DispatchCore {
  readonly bus: Bus;
  readonly gatewayId: string;
  readonly ackTimeoutMs: number;
  readonly heartbeatMs: number;
  /** Silence after which the worker is presumed lost (3 × heartbeat). */
  readonly lostAfterMs: number;
  readonly requestTimeoutMs: number;
  readonly maxAttempts: number;
  readonly logger: Logger;
  /**
   * Puts a job straight into the work queue (NATS only): when no worker acks in time (one is paused or swamped),
   * the queue's pull model hands it to a worker that is alive. Undefined: no queue (in-process bus).
   */
  readonly enqueue: ((job: QueuedChatJob, headers: BusHeaders) => Promise<void>) | undefined;
  /** The orchestrators' ack wait: a queued job's silent worker is replaced within it. */
  readonly redeliveryMs: number;
  readonly ackRoundTrip: Observed;
  readonly staleFrames: Counted;
  retried(reason: RetryReason): void;
  /** `upToAttempt`: stop only that attempt and earlier ones (a retry supersedes them). */
  publishCancel(requestId: string, reason: CancelReason, headers: BusHeaders, upToAttempt?: number): void;
  /** Called exactly once, when the request settles. */
  release(request: InFlightRequest, outcome: string): void;
}

/**
 * One chat request on its way through the bus: sends attempts, follows their frames, and decides
 * when a worker is lost. Hot path (`onFrame`): no allocation beyond the chunk itself, no timers.
 */
export class InFlightRequest implements FrameTarget {
  readonly promise: Promise<ChatOutcome>;
  private resolve!: (outcome: ChatOutcome) => void;
  private reject!: (err: AppError) => void;

  private attempt = -1;
  private acked = false;
  /**
   * The job waits in the work queue (a `queued` frame, no model-lane frame yet): only the deadline runs. A queued
   * job's worker that falls silent is replaced by the queue itself, within `redeliveryMs`.
   */
  private queued = false;
  /** Which delivery of the queued job the frames come from (0: the lookup lane). */
  private delivery = 0;
  private redeliveryMs = 0;
  /** This attempt was put in the queue by the gateway itself. */
  private queuedDirectly = false;
  private noAckStreak = 0;
  private nextSeq = 0;
  private parts: string[] = [];
  /** Chunks of the current answer have reached the listener (a retry must announce a reset). */
  private delivered = false;
  private started = false;
  private settled = false;
  private lastFrameAt = 0;
  private attemptSentAt = 0;
  private ackDeadline = Number.POSITIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  private readonly startedAt = performance.now();
  private readonly deadlineMono: number;
  private readonly deadlineAt: number;
  private readonly replyTo: string;
  private readonly headers: BusHeaders;
  private readonly onAbort = (): void => this.fail(new AppError('cancelled', 'The client went away.'), 'client_gone');
  private readonly onTimer = (): void => this.checkTimers();

  constructor(
    private readonly core: DispatchCore,
    readonly requestId: string,
    private readonly request: ChatRequest,
    traceparent: string | undefined,
    private readonly listener: DispatchListener | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.promise = new Promise<ChatOutcome>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.deadlineMono = this.startedAt + core.requestTimeoutMs;
    this.deadlineAt = Date.now() + core.requestTimeoutMs;
    this.replyTo = Subjects.chatFrames(core.gatewayId, requestId);
    this.headers = { [Headers.requestId]: requestId };
    if (traceparent !== undefined) this.headers[Headers.traceparent] = traceparent;
  }

  begin(): void {
    if (this.signal?.aborted) {
      this.fail(new AppError('cancelled', 'The client went away.'), undefined);
      return;
    }
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.arm();
    this.sendAttempt();
  }

  /** Shutdown: stop waiting and tell the worker to stop too. */
  abandon(err: AppError): void {
    this.fail(err, 'shutdown');
  }

  onFrame(frame: Frame): void {
    if (this.settled) return;
    if (frame.attempt !== this.attempt) {
      this.core.staleFrames.inc();
      return;
    }
    const delivery = frame.delivery ?? 0;
    if (delivery !== this.delivery) {
      // A delivery of the queued job older than the one answering now (a worker that stalled, then woke up).
      if (delivery < this.delivery) {
        this.core.staleFrames.inc();
        return;
      }
      this.startDelivery(delivery);
    }
    if (this.acked) this.lastFrameAt = performance.now();
    else this.markAcked();
    if (!this.started && frame.type !== 'ack' && frame.type !== 'error') this.start();
    switch (frame.type) {
      case 'chunk':
        if (frame.seq !== this.nextSeq) return this.retry('sequence_gap');
        this.nextSeq += 1;
        this.parts.push(frame.delta);
        if (this.listener?.onChunk) {
          this.delivered = true;
          this.listener.onChunk(frame.delta, frame.seq, this.delivery > 0 ? 'model' : 'lookup');
        }
        return;
      case 'reset':
        // The worker's model failed mid-answer and another one answers: as a retry on another worker does.
        return this.restartAnswer();
      case 'done':
        if (frame.chunks !== this.nextSeq) return this.retry('chunk_mismatch');
        return this.succeed(frame);
      case 'error':
        return this.onWorkerError(frame);
      case 'queued':
        if (this.delivery > 0) return; // the model lane was quicker than the lookup lane's last frame
        this.queued = true;
        this.redeliveryMs = frame.redelivery_ms;
        return this.arm();
      default:
        return; // ack, heartbeat: liveness only
    }
  }

  /** Frames of a new delivery of the queued job: the answer starts again (the client is told if it had chunks). */
  private startDelivery(delivery: number): void {
    if (this.delivery > 0) {
      this.core.retried('redelivered');
      this.core.logger.warn({ request_id: this.requestId, attempt: this.attempt, delivery }, 'the queue gave the request to another worker');
    }
    this.delivery = delivery;
    this.queued = false;
    this.nextSeq = 0;
    this.parts = [];
    if (this.delivered) {
      this.delivered = false;
      this.listener?.onReset?.();
    }
    this.lastFrameAt = performance.now();
    this.arm();
  }

  /** Silence after which the worker of this attempt is presumed lost. */
  private silenceLimit(): number {
    if (this.queued) return Number.POSITIVE_INFINITY;
    // A queued job's worker is replaced by the queue (its ack wait) before the gateway tries on its own.
    return this.delivery > 0 ? this.core.lostAfterMs + this.redeliveryMs : this.core.lostAfterMs;
  }

  private start(): void {
    this.started = true;
    this.listener?.onStart?.();
  }

  onFrameError(err: unknown): void {
    this.core.logger.error({ request_id: this.requestId, err }, 'a frame could not be delivered to the client');
    this.fail(toAppError(err), 'gave_up');
  }

  private sendAttempt(): void {
    this.attempt += 1;
    this.acked = false;
    this.queued = false;
    this.delivery = 0;
    this.queuedDirectly = false;
    this.nextSeq = 0;
    this.parts = [];
    const job: ChatJobInput = {
      request_id: this.requestId,
      attempt: this.attempt,
      reply_to: this.replyTo,
      deadline_at: this.deadlineAt,
      heartbeat_ms: this.core.heartbeatMs,
      request: this.request,
    };
    this.attemptSentAt = performance.now();
    this.ackDeadline = this.attemptSentAt + this.core.ackTimeoutMs;
    try {
      // The reply subject is this request's frame subject: with no worker subscribed, the server says so there at once.
      this.core.bus.publish(Subjects.chatRequest, encodeJson(job), { reply: this.replyTo, headers: this.headers });
    } catch (err) {
      this.onAckFailure(this.attempt, err);
      return;
    }
    this.arm();
  }

  /** The server's answer to the job: no orchestrator is subscribed. */
  onNoResponders(): void {
    if (this.settled || this.acked) return;
    this.onAckFailure(this.attempt, new BusNoRespondersError(Subjects.chatRequest));
  }

  private onAckFailure(attempt: number, err: unknown): void {
    // Frames of this attempt may have arrived before the reply was lost: the worker has it.
    if (this.settled || attempt !== this.attempt || this.acked) return;
    if (err instanceof BusNoRespondersError) return this.fail(err, undefined);
    if (err instanceof BusTimeoutError) {
      if (this.core.enqueue && !this.queuedDirectly) return this.enqueueDirectly();
      this.noAckStreak += 1;
      if (this.noAckStreak >= 2) {
        return this.fail(new AppError('no_workers', 'No orchestrator took the request in time.'), 'gave_up');
      }
      return this.retry('no_ack');
    }
    if (err instanceof BusClosedError) return this.fail(err, undefined);
    this.core.logger.error({ request_id: this.requestId, err }, 'sending the chat job failed');
    this.fail(toAppError(err), 'gave_up');
  }

  /**
   * The bus came back after an outage. A job waiting in the queue may have been lost with a NATS server that
   * kept it in memory: it is published to the queue once more under the same message id, which the queue
   * drops as a duplicate when it still has it (or just ran it).
   */
  onBusReconnected(): void {
    const attempt = this.attempt;
    const waiting = () => !this.settled && this.queued && this.delivery === 0 && attempt === this.attempt;
    if (!waiting() || !this.core.enqueue) return;
    const enqueue = this.core.enqueue;
    const job = this.queuedJob(attempt);
    // The orchestrators make the queue again after their own reconnect: until then the publish fails.
    void (async () => {
      for (let tries = 0; tries < REQUEUE_TRIES && waiting(); tries++) {
        try {
          await enqueue(job, this.headers);
          return;
        } catch (err) {
          if (err instanceof AppError) return; // refused (full): the deadline decides
          await new Promise((r) => setTimeout(r, REQUEUE_PAUSE_MS));
        }
      }
    })();
  }

  private queuedJob(attempt: number): QueuedChatJob {
    return {
      request_id: this.requestId,
      attempt,
      reply_to: this.replyTo,
      deadline_at: this.deadlineAt,
      heartbeat_ms: this.core.heartbeatMs,
      request: this.request,
      queued_at: Date.now(),
      looked_up: false,
    };
  }

  /**
   * No worker acked this attempt: rather than publish it again (the same paused worker may get it again), put it
   * in the work queue, where only a live worker's free slot takes it. The paused worker, if it wakes up, queues
   * the same attempt under the same message id: the queue keeps one.
   */
  private enqueueDirectly(): void {
    const enqueue = this.core.enqueue!;
    const attempt = this.attempt;
    this.queuedDirectly = true;
    this.acked = true;
    this.queued = true;
    this.redeliveryMs = this.core.redeliveryMs;
    this.lastFrameAt = performance.now();
    this.core.retried('queued_directly');
    const job = this.queuedJob(attempt);
    this.arm();
    enqueue(job, this.headers).then(
      () => this.core.logger.info({ request_id: this.requestId, attempt }, 'no worker acked: the gateway queued the request'),
      (err: unknown) => {
        if (this.settled || attempt !== this.attempt) return;
        if (err instanceof AppError) return this.fail(err, 'gave_up');
        // No queue to put it in: publish again, as without one.
        this.queued = false;
        this.noAckStreak += 1;
        this.retry('no_ack');
      },
    );
  }

  private markAcked(): void {
    this.core.ackRoundTrip.observe((performance.now() - this.attemptSentAt) / 1000);
    this.acked = true;
    this.noAckStreak = 0;
    this.lastFrameAt = performance.now();
    if (this.lastFrameAt + this.silenceLimit() < this.timerAt) this.arm();
  }

  private onWorkerError(frame: ErrorFrame): void {
    const err = isErrorCode(frame.code)
      ? new AppError(frame.code, frame.message, frame.retry_after_ms === undefined ? undefined : { retryAfterMs: frame.retry_after_ms })
      : new AppError('internal');
    if (frame.retryable && RETRY_ON_WORKER_ERROR.has(frame.code)) return this.retry('retryable_error', err);
    this.fail(err, undefined);
  }

  /** A new attempt on whichever worker takes it, or the end when attempts are used up. */
  private retry(reason: RetryReason, lastError?: AppError): void {
    if (this.attempt + 1 >= this.core.maxAttempts) {
      const err = lastError ?? new AppError(reason === 'no_ack' ? 'no_workers' : 'worker_lost');
      this.fail(err, 'gave_up');
      return;
    }
    this.core.retried(reason);
    this.core.logger.warn(
      { request_id: this.requestId, attempt: this.attempt, reason },
      'sending the chat request to another worker',
    );
    this.restartAnswer();
    // A worker that was only slow would go on paying for tokens nobody reads.
    if (this.attempt >= 0) this.core.publishCancel(this.requestId, 'superseded', this.headers, this.attempt);
    this.sendAttempt();
  }

  /** The chunks so far are void: the answer starts again from seq 0 (the client is told when it saw any). */
  private restartAnswer(): void {
    this.nextSeq = 0;
    this.parts = [];
    if (this.delivered) {
      this.delivered = false;
      this.listener?.onReset?.();
    }
  }

  /** One timer per request, for the deadline and the watchdog; re-armed only when it fires. */
  private arm(): void {
    const at = Math.min(this.deadlineMono, this.acked ? this.lastFrameAt + this.silenceLimit() : this.ackDeadline);
    if (this.timer !== undefined) {
      if (at >= this.timerAt) return;
      clearTimeout(this.timer);
    }
    this.timerAt = at;
    this.timer = setTimeout(this.onTimer, Math.max(0, Math.ceil(at - performance.now())));
  }

  private checkTimers(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.settled) return;
    const now = performance.now();
    if (now >= this.deadlineMono) return this.fail(new AppError('deadline_exceeded'), 'deadline');
    if (this.acked && now - this.lastFrameAt >= this.silenceLimit()) {
      this.retry('worker_lost');
      if (this.settled) return;
    } else if (!this.acked && now >= this.ackDeadline) {
      this.onAckFailure(this.attempt, new BusTimeoutError(Subjects.chatRequest, this.core.ackTimeoutMs));
      if (this.settled) return;
    }
    this.arm();
  }

  private succeed(frame: DoneFrame): void {
    const outcome: ChatOutcome = {
      response: this.parts.length === 1 ? this.parts[0]! : this.parts.join(''),
      suggestions: frame.suggestions,
      model: frame.model,
      mode: frame.mode,
      task_type: frame.task_type,
      cached: frame.cached,
      source: frame.source ?? (frame.cached ? 'cache' : 'model'),
      usage: frame.usage,
      cost_usd: frame.cost_usd,
      latency_ms: Math.round(performance.now() - this.startedAt),
      worker_latency_ms: frame.latency_ms,
      ttft_ms: frame.ttft_ms,
      worker_id: frame.worker_id,
      attempts: this.attempt + 1,
    };
    this.settle('done');
    this.resolve(outcome);
  }

  /** `cancel`: why workers must stop, when one may still be working on it. */
  private fail(err: AppError, cancel: CancelReason | undefined): void {
    if (this.settled) return;
    this.settle(err.code);
    if (cancel !== undefined) this.core.publishCancel(this.requestId, cancel, this.headers);
    this.reject(err);
  }

  private settle(outcome: string): void {
    this.settled = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.core.release(this, outcome);
  }
}
