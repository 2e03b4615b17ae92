import { setMaxListeners } from 'node:events';
import {
  decodeJson,
  Headers,
  QueuedChatJobSchema,
  runWithContext,
  type Bus,
  type BusMetrics,
  type Logger,
  type QueuedChatJob,
  type QueueMetrics,
} from '@actionedx/shared';
import type { QueuedMessage, WorkQueue } from '@actionedx/shared';
import type { ChatPipeline } from './chat-pipeline.js';
import { FrameStream } from './frame-stream.js';
import type { RunningJobs } from './running-jobs.js';

/** A pull waits this long for a job before asking again. */
const PULL_EXPIRES_MS = 15_000;
/** After a failed pull (no queue, a lost connection) a slot waits this long. */
const PULL_RETRY_MS = 500;
/** Weight of the newest job in the mean job time. */
const EWMA_WEIGHT = 0.2;

export interface ModelLaneDeps {
  bus: Bus;
  pipeline: ChatPipeline;
  queue: WorkQueue;
  jobs: RunningJobs;
  workerId: string;
  /** Model calls at most at once on this worker (`MAX_IN_FLIGHT`): one slot each. */
  slots: number;
  logger: Logger;
  queueMetrics: QueueMetrics;
  busMetrics?: BusMetrics | undefined;
}

/**
 * The slots of one worker: each pulls one job from the work queue when it is free, runs it through the
 * pipeline (frames to the job's `reply_to`, each with its `delivery`), keeps the job alive in the queue while
 * it works, and acknowledges it after the terminal frame (after a cancel or an expired deadline too: abandoned
 * work is not delivered again). On a drain the slots stop pulling; a job cut off by the end of the grace period
 * goes back to the queue at once for another worker.
 */
export class ModelLane {
  private readonly stopping = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private busy = 0;
  private meanJobMs: number | undefined;
  private readonly busyGauge: { set(v: number): void };

  constructor(private readonly deps: ModelLaneDeps) {
    // Every free slot waits on the work queue with this signal: as many listeners as slots, not a leak.
    setMaxListeners(deps.slots + 1, this.stopping.signal);
    this.busyGauge = deps.queueMetrics.slots.labels('busy');
    deps.queueMetrics.slots.labels('total').set(deps.slots);
    this.busyGauge.set(0);
  }

  /** Slots running a job now. */
  get busySlots(): number {
    return this.busy;
  }

  /** Mean duration of a job here (1 s before the first one). */
  get typicalJobMs(): number {
    return this.meanJobMs ?? 1_000;
  }

  start(): void {
    for (let i = 0; i < this.deps.slots; i++) this.loops.push(this.slot());
  }

  /** Stop pulling; resolves when every slot has finished its job (the caller bounds the wait). */
  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.loops);
  }

  private async slot(): Promise<void> {
    const { queue, logger } = this.deps;
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      let msg: QueuedMessage | null;
      try {
        msg = await queue.pull(signal, PULL_EXPIRES_MS);
      } catch (err) {
        logger.debug({ err: (err as Error).message }, 'work queue pull failed; trying again');
        await pause(PULL_RETRY_MS, signal);
        continue;
      }
      if (!msg) continue;
      this.busyGauge.set(++this.busy);
      try {
        await this.run(msg);
      } catch (err) {
        logger.error({ err }, 'model lane threw');
        await msg.ack();
      } finally {
        this.busyGauge.set(--this.busy);
      }
    }
  }

  private async run(msg: QueuedMessage): Promise<void> {
    let job: QueuedChatJob;
    try {
      job = decodeJson(QueuedChatJobSchema, msg.data);
    } catch (err) {
      this.deps.logger.warn({ err }, 'dropped a malformed queued job');
      return msg.ack();
    }
    const traceparent = msg.headers[Headers.traceparent];
    const headers: Record<string, string> = { [Headers.requestId]: job.request_id, ...(traceparent ? { [Headers.traceparent]: traceparent } : {}) };
    const ctx = { request_id: job.request_id, ...(traceparent ? { traceparent } : {}) };
    return runWithContext(ctx, () => this.execute(job, msg, headers));
  }

  private async execute(job: QueuedChatJob, msg: QueuedMessage, headers: Record<string, string>): Promise<void> {
    const { bus, pipeline, jobs, logger, queueMetrics, busMetrics } = this.deps;
    queueMetrics.waitTime.observe(Math.max(0, Date.now() - job.queued_at) / 1000);
    if (msg.deliveryCount > 1) {
      queueMetrics.redeliveries.inc();
      logger.info({ delivery: msg.deliveryCount }, 'took over a job from another worker');
    }
    // The lookup lane's reservation is this job's on its first delivery only: a later one may run beside a stalled
    // first that still holds it under the same token; it takes the lock as any job does.
    const flightToken = msg.deliveryCount === 1 ? job.flight_token : undefined;
    // The gateway gave up on it while it waited (client gone, deadline, a newer attempt): no model call.
    if (jobs.wasCancelled(job.request_id, job.attempt) || Date.now() >= job.deadline_at) {
      logger.debug({ attempt: job.attempt }, 'dropped a queued job nobody waits for');
      await this.releaseReservation(job, flightToken);
      return msg.ack();
    }
    const running = jobs.begin(job, msg.deliveryCount);
    if (running.signal.aborted) {
      // A newer run of this request is here.
      await this.releaseReservation(job, flightToken);
      return msg.ack();
    }
    const out = new FrameStream({
      bus,
      subject: job.reply_to,
      requestId: job.request_id,
      attempt: job.attempt,
      headers,
      heartbeatMs: job.heartbeat_ms,
      ack: { workerId: this.deps.workerId },
      delivery: msg.deliveryCount,
      ...(busMetrics ? { metrics: busMetrics } : {}),
    });
    let handedBack = false;
    running.onShutdown = () => {
      // Past the grace period: nothing more from here, and the queue gives the job to another worker now.
      handedBack = true;
      out.abandon();
      msg.nak();
    };
    // The queue's ack wait restarts with each sign of life: a worker that dies or stalls loses the job fast.
    const keepAlive = setInterval(() => msg.working(), Math.max(100, Math.min(job.heartbeat_ms, this.deps.queue.limits.ackWaitMs / 3)));
    keepAlive.unref();
    const started = performance.now();
    try {
      await pipeline.run(pipeline.prepared(job.request), out, running.signal, job.request_id, { lookedUp: job.looked_up, flightToken });
    } finally {
      clearInterval(keepAlive);
      running.end();
    }
    const ms = performance.now() - started;
    this.meanJobMs = this.meanJobMs === undefined ? ms : this.meanJobMs + EWMA_WEIGHT * (ms - this.meanJobMs);
    // A newer delivery of this job runs here now (it came back while this one stalled): that one acks.
    if (handedBack || running.replaced) return;
    // The slot takes its next job at once; the acknowledgement is confirmed in the background.
    void msg.ack();
  }

  /** Identical misses follow a reserved job: one that will not run lets them go (they queue their own) at once. */
  private async releaseReservation(job: QueuedChatJob, token: string | undefined): Promise<void> {
    if (token === undefined) return;
    const { pipeline } = this.deps;
    await pipeline.releaseReservation(pipeline.prepared(job.request), token);
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
