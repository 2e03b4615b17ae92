import {
  AppError,
  encodeJson,
  type Bus,
  type BusMetrics,
  type ChatJob,
  type Logger,
  type QueuedChatJob,
  type QueueMetrics,
  QueueFullError,
  userShard,
  type WorkQueue,
} from '@actionedx/shared';
import type { FlightReservation } from '../cache/index.js';
import type { ChatPipeline, PreparedTurn } from './chat-pipeline.js';
import { FrameStream } from './frame-stream.js';
import type { FreeSlots } from './model-lane.js';
import type { RunningJobs } from './running-jobs.js';

/** A queue that cannot be reached (a NATS leader election) is tried again for this long. */
const ENQUEUE_RETRY_MS = 8_000;
const RETRY_AFTER_MIN_MS = 1_000;
/**
 * After the queue said it is full, misses are refused without asking it again for this long: under a burst the
 * refusals come at once instead of queueing up behind thousands of publishes the queue would refuse anyway.
 */
const FULL_HOLD_MS = 200;
const RETRY_AFTER_MAX_MS = 30_000;

export interface LookupLaneDeps {
  bus: Bus;
  pipeline: ChatPipeline;
  queue: WorkQueue;
  jobs: RunningJobs;
  /** The model lane's slots waiting on an empty queue: a miss runs in one at once instead of being queued. */
  freeSlots?: FreeSlots | undefined;
  workerId: string;
  logger: Logger;
  queueMetrics: QueueMetrics;
  busMetrics?: BusMetrics | undefined;
  /** Mean time of a model-lane job here, for `Retry-After`. */
  typicalJobMs(): number;
  /** Jobs in the queue as last read, if known. */
  queueDepth(): number | undefined;
}

/**
 * The first stop of every chat job (core NATS, queue group, no slot): acks at once, answers what the cache has
 * (a stored answer, or a computation of the same question running now), and puts the rest in the work queue,
 * telling the gateway with a `queued` frame. A full queue is answered at once: `overloaded` with a retry time.
 *
 * A miss with a cache key reserves its flight lock before it is queued (the job carries the token, the model lane
 * adopts it): identical misses arriving meanwhile follow it instead of taking a share of the queue each. A job
 * that is not queued after all gives its reservation back at once, so its followers queue their own.
 *
 * A miss that finds a model slot waiting on an empty queue (`FreeSlots`) runs in it here and now, as the queue's
 * first delivery would (frames with `delivery` 1, the reservation adopted), without the queue's round trip and
 * `queued` frame. Such a run is not in the queue: if this worker dies, the gateway's watchdog (3 heartbeats)
 * sends the request again instead of the queue's redelivery.
 */
export class LookupLane {
  private readonly rejections: Record<'queue_full' | 'user_share' | 'unavailable', { inc(): void }>;
  private fullUntil = 0;

  constructor(private readonly deps: LookupLaneDeps) {
    const r = deps.queueMetrics.rejections;
    this.rejections = { queue_full: r.labels('queue_full'), user_share: r.labels('user_share'), unavailable: r.labels('unavailable') };
  }

  async handle(job: ChatJob, headers: Record<string, string>): Promise<void> {
    const { bus, pipeline, jobs, logger } = this.deps;
    const running = jobs.begin(job);
    // This attempt already runs here in the model lane (the gateway queued it itself when this lane was late).
    if (running.signal.aborted) return;
    const out = new FrameStream({
      bus,
      subject: job.reply_to,
      requestId: job.request_id,
      attempt: job.attempt,
      headers,
      heartbeatMs: job.heartbeat_ms,
      ack: { workerId: this.deps.workerId },
      ...(this.deps.busMetrics ? { metrics: this.deps.busMetrics } : {}),
    });
    // The model lane took this very attempt over here meanwhile (the gateway queued it itself when this lane was
    // late, as when a NATS node fails over): it answers, and this lane says nothing more (no `cancelled` error).
    running.signal.addEventListener('abort', () => running.replaced && out.abandon(), { once: true });
    let reservation: FlightReservation | undefined;
    /** The queue holds a job carrying the reservation's token: the model lane adopts it, or gives it back. */
    let handedOn = false;
    try {
      const turn = await pipeline.prepare(job.request);
      if (await pipeline.answerStored(turn, out, running.signal, job.request_id)) return;
      if (running.signal.aborted) return this.cancelled(out, running.signal);
      if (Date.now() < this.fullUntil) return this.refuse(out, 'queue_full');
      const reserved = await pipeline.reserve(turn);
      // An identical miss reserved the key since the lookup: follow it. Nothing stored in the end: queue this one.
      if (reserved === 'busy' && (await pipeline.followReserved(turn, out, running.signal, job.request_id))) return;
      // 'unavailable' (Redis down): queued without a reservation, as before it existed.
      if (typeof reserved === 'object') reservation = reserved;
      if (running.signal.aborted) return this.cancelled(out, running.signal);
      const loan = this.deps.freeSlots?.borrow(job.request.user_id);
      if (loan !== undefined) {
        // The run adopts the reservation and gives it back when it ends.
        handedOn = true;
        try {
          out.runAsDelivery(1);
          await pipeline.run(turn, out, running.signal, job.request_id, { lookedUp: turn.key !== undefined, flightToken: reservation?.token });
        } finally {
          loan.release();
        }
        return;
      }
      handedOn = (await this.enqueue(job, turn, out, headers, running.signal, reservation?.token)) === 'queued';
    } catch (err) {
      logger.error({ err }, 'lookup lane threw');
      out.error('internal', 'Internal error.', true);
    } finally {
      // Refused, given up, failed, or queued already without the token: identical misses waiting on this
      // reservation must not wait out its lease.
      if (reservation && !handedOn) await reservation.release();
      running.end();
    }
  }

  private cancelled(out: FrameStream, signal: AbortSignal): void {
    const reason = signal.reason instanceof AppError ? signal.reason : new AppError('cancelled');
    out.error(reason.code, reason.message, reason.retryable);
  }

  /**
   * Puts the job in the work queue: `queued` when the queue holds this job's data, `theirs` when it held this
   * attempt already (the gateway queued it itself when this lane was late: without a flight token), `refused`
   * when the lane answered with an error.
   */
  private async enqueue(
    job: ChatJob,
    turn: PreparedTurn,
    out: FrameStream,
    headers: Record<string, string>,
    signal: AbortSignal,
    flightToken: string | undefined,
  ): Promise<'queued' | 'theirs' | 'refused'> {
    const { queue, logger, queueMetrics } = this.deps;
    const queued: QueuedChatJob = {
      ...job,
      request: turn.req,
      queued_at: Date.now(),
      looked_up: turn.key !== undefined,
      ...(flightToken === undefined ? {} : { flight_token: flightToken }),
    };
    const data = encodeJson(queued);
    const shard = userShard(job.request.user_id);
    const giveUpAt = Date.now() + ENQUEUE_RETRY_MS;
    for (let pause = 100, first = true; ; pause = Math.min(pause * 2, 1_000), first = false) {
      try {
        // The message id makes a repeated publish of this attempt (after a lost acknowledgement) one job.
        const { duplicate } = await queue.enqueue(shard, data, { msgId: `${job.request_id}.${job.attempt}`, headers });
        queueMetrics.enqueued.inc();
        const depth = this.deps.queueDepth();
        out.queued({ redelivery_ms: queue.limits.ackWaitMs, ...(depth === undefined ? {} : { depth }) });
        // A duplicate after a failed try may be this lane's own first publish (its acknowledgement lost).
        return duplicate && first ? 'theirs' : 'queued';
      } catch (err) {
        if (err instanceof QueueFullError) {
          if (err.reason === 'queue_full') this.fullUntil = Date.now() + FULL_HOLD_MS;
          this.refuse(out, err.reason);
          return 'refused';
        }
        if (Date.now() + pause >= giveUpAt || signal.aborted) {
          this.rejections.unavailable.inc();
          logger.error({ err }, 'work queue unavailable');
          out.error('bus_unavailable', 'The work queue is unavailable.', true);
          return 'refused';
        }
        logger.warn({ err: (err as Error).message }, 'work queue unavailable; trying again');
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  }

  private refuse(out: FrameStream, reason: 'queue_full' | 'user_share'): void {
    this.rejections[reason].inc();
    const retryAfterMs = this.retryAfterMs(reason);
    this.deps.logger.debug({ reason, retry_after_ms: retryAfterMs }, 'work queue refused a job: overloaded');
    out.error('overloaded', new AppError('overloaded').message, true, retryAfterMs);
  }

  /** About when a slot frees up for this user (their own job ends) or for anyone (the queue moves). */
  private retryAfterMs(reason: 'queue_full' | 'user_share'): number {
    const typical = this.deps.typicalJobMs();
    const estimate = reason === 'user_share' ? typical : 2 * typical;
    const ms = Math.min(RETRY_AFTER_MAX_MS, Math.max(RETRY_AFTER_MIN_MS, estimate));
    // Whole seconds: that is what Retry-After carries.
    return Math.ceil(ms / 1_000) * 1_000;
  }
}
