import {
  AppError,
  QueueFullError,
  Subjects,
  userShard,
  encodeJson,
  type Bus,
  type BusHeaders,
  type CancelMessage,
  type ChatRequest,
  type Logger,
  type QueuedChatJob,
  type WorkQueue,
} from '@actionedx/shared';
import type { GatewayMetrics } from '../metrics.js';
import type { ChatOutcome, DispatchContext, DispatchOptions } from './dispatch-types.js';
import { FrameRouter } from './frame-router.js';
import { InFlightRequest, type CancelReason, type DispatchCore, type RetryReason } from './in-flight-request.js';

export interface ChatDispatcherOptions {
  bus: Bus;
  /** This gateway's token in frame subjects. */
  gatewayId: string;
  /** Wait for a worker's ack. */
  ackTimeoutMs: number;
  /** Told to workers; 3× this without a frame means the worker is lost. */
  heartbeatMs: number;
  /** Overall deadline of a request. */
  requestTimeoutMs: number;
  /** Attempts in all, the first included. */
  maxAttempts: number;
  logger: Logger;
  metrics: Pick<GatewayMetrics, 'bus' | 'chat'>;
  /** The orchestrators' work queue, to publish a job no worker acked (NATS only). */
  queue?: WorkQueue | undefined;
  /** The orchestrators' ack wait (QUEUE_ACK_WAIT_MS). Default 4 s. */
  queueAckWaitMs?: number;
}

/** A refused direct enqueue: the client comes back after this (no worker told us better). */
const DIRECT_RETRY_AFTER_MS = 2_000;

/**
 * The gateway side of the chat protocol (docs/protocol.md): sends jobs to the orchestrators' queue
 * group, follows their frames, retries lost work on another worker, and cancels what a client abandons.
 */
export class ChatDispatcher {
  private readonly router: FrameRouter;
  private readonly core: DispatchCore;
  private readonly requests = new Set<InFlightRequest>();
  private idleWaiters: Array<() => void> = [];
  private accepting = true;

  constructor(private readonly opts: ChatDispatcherOptions) {
    const { bus, logger, metrics } = opts;
    this.router = new FrameRouter(bus, opts.gatewayId, metrics, logger);
    const retries = metrics.bus.retries;
    const outcomes = metrics.chat.outcomes;
    const inFlight = metrics.chat.inFlight;
    this.core = {
      bus,
      gatewayId: opts.gatewayId,
      ackTimeoutMs: opts.ackTimeoutMs,
      heartbeatMs: opts.heartbeatMs,
      lostAfterMs: 3 * opts.heartbeatMs,
      requestTimeoutMs: opts.requestTimeoutMs,
      maxAttempts: opts.maxAttempts,
      logger,
      enqueue: opts.queue ? (job, headers) => this.enqueue(opts.queue!, job, headers) : undefined,
      redeliveryMs: opts.queueAckWaitMs ?? 4_000,
      ackRoundTrip: metrics.bus.roundTrip.labels(Subjects.chatRequest),
      staleFrames: metrics.chat.droppedFrames.labels('stale_attempt'),
      retried: (reason: RetryReason) => retries.inc({ reason }),
      publishCancel: (requestId: string, reason: CancelReason, headers: BusHeaders, upToAttempt?: number) =>
        this.publishCancel(requestId, reason, headers, upToAttempt),
      release: (request: InFlightRequest, outcome: string) => {
        this.router.detach(request.requestId, request);
        this.requests.delete(request);
        inFlight.dec();
        outcomes.inc({ outcome });
        if (this.requests.size === 0) this.notifyIdle();
      },
    };
  }

  /** Subscribe to this gateway's frames; call once before dispatching. */
  start(): void {
    this.router.start();
    // After an outage (not the first connection), jobs waiting in the queue are published to it once more.
    let seenConnected = this.opts.bus.state() === 'connected';
    let wasDown = false;
    this.opts.bus.onStateChange((state) => {
      if (state !== 'connected') {
        wasDown = seenConnected;
        return;
      }
      seenConnected = true;
      if (!wasDown) return;
      wasDown = false;
      for (const req of this.requests) req.onBusReconnected();
    });
  }

  get inFlight(): number {
    return this.requests.size;
  }

  /**
   * Run one chat request to its end. Chunks and resets go to `opts.listener` as they come; the promise
   * resolves with the whole answer or rejects with an AppError (`no_workers`, `worker_lost`, `cancelled`,
   * `deadline_exceeded`, a worker's error, ...).
   */
  dispatch(request: ChatRequest, ctx: DispatchContext, opts: DispatchOptions = {}): Promise<ChatOutcome> {
    if (!this.accepting) return Promise.reject(new AppError('shutting_down'));
    if (this.opts.bus.state() === 'closed') return Promise.reject(new AppError('bus_unavailable'));
    const req = new InFlightRequest(this.core, ctx.request_id, request, ctx.traceparent, opts.listener, opts.signal);
    if (!this.router.attach(ctx.request_id, req)) {
      return Promise.reject(new AppError('busy', 'A request with this id is already in flight.'));
    }
    this.requests.add(req);
    this.opts.metrics.chat.inFlight.inc();
    req.begin();
    return req.promise;
  }

  /** Refuse new requests (`shutting_down`); those in flight go on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Resolves once no request is in flight. */
  idle(): Promise<void> {
    if (this.requests.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** End every request still in flight with `shutting_down` (workers are told to stop) and unsubscribe. */
  close(): void {
    this.accepting = false;
    for (const req of [...this.requests]) req.abandon(new AppError('shutting_down'));
    this.router.stop();
  }

  private async enqueue(queue: WorkQueue, job: QueuedChatJob, headers: BusHeaders): Promise<void> {
    try {
      await queue.enqueue(userShard(job.request.user_id), encodeJson(job), { msgId: `${job.request_id}.${job.attempt}`, headers });
    } catch (err) {
      if (err instanceof QueueFullError) throw new AppError('overloaded', undefined, { retryAfterMs: DIRECT_RETRY_AFTER_MS });
      throw err;
    }
  }

  private publishCancel(requestId: string, reason: CancelReason, headers: BusHeaders, upToAttempt?: number): void {
    const msg: CancelMessage = { request_id: requestId, reason, ...(upToAttempt === undefined ? {} : { up_to_attempt: upToAttempt }) };
    try {
      this.opts.bus.publish(Subjects.chatCancel, encodeJson(msg), { headers });
    } catch (err) {
      // The bus is gone: the worker hits the deadline that travelled with the job.
      this.opts.logger.warn({ request_id: requestId, err }, 'could not publish a cancel');
    }
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
