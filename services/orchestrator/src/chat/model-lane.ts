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
/**
 * A slot that has waited on the queue this long got nothing because nothing waits there (a job would have reached
 * its pull within a millisecond or two): only such a slot is lent, so a miss never goes ahead of queued ones.
 */
const IDLE_PROOF_MS = 20;

/** A model slot lent to the lookup lane for one miss; `release` when its answer is over. */
export interface SlotLoan {
  release(): void;
}

/** What the lookup lane asks of the model lane: a free slot for a miss, when the queue has nothing waiting. */
export interface FreeSlots {
  borrow(userId: string): SlotLoan | undefined;
}

/** A slot waiting on the queue: its pull can be stopped to lend it to the lookup lane. */
interface IdleSlot {
  readonly pull: AbortController;
  readonly since: number;
  /** Set when the slot is lent: resolves when the loan ends. */
  loan: Promise<void> | undefined;
}

export interface ModelLaneDeps {
  bus: Bus;
  pipeline: ChatPipeline;
  queue: WorkQueue;
  jobs: RunningJobs;
  workerId: string;
  /** Model calls at most at once on this worker (`MAX_IN_FLIGHT`): one slot each. */
  slots: number;
  /** Lend free slots to the lookup lane (`QUEUE_BYPASS_WHEN_IDLE`): misses skip an empty queue. */
  lend: boolean;
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
 *
 * A slot that has waited on the queue for a while waits because the queue has nothing: such a slot is lent to the
 * lookup lane (`borrow`), which runs a miss in it at once instead of putting it in the queue and pulling it back
 * (a round trip through JetStream and a `queued` frame fewer per miss). The slot stops its pull (a job that
 * arrives at that moment goes back to the queue at once) and pulls again when the loan ends. Loans count against
 * the user's share of the queue, per worker: a user has at most `maxPerUser` misses running on lent slots of one
 * worker, besides their share of the queue.
 */
export class ModelLane implements FreeSlots {
  private readonly stopping = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private busy = 0;
  private meanJobMs: number | undefined;
  /** Slots waiting on the queue now, in the order they started waiting. */
  private readonly idle = new Set<IdleSlot>();
  /** Misses running on lent slots, per user. */
  private readonly lentTo = new Map<string, number>();
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

  /**
   * A slot for one miss of `userId`, if one is waiting on an empty queue and the user has fewer than their share
   * of misses on lent slots here; undefined otherwise (the miss goes to the queue).
   */
  borrow(userId: string): SlotLoan | undefined {
    if (!this.deps.lend || this.stopping.signal.aborted) return undefined;
    const lent = this.lentTo.get(userId) ?? 0;
    if (lent >= this.deps.queue.limits.maxPerUser) return undefined;
    // The slot waiting longest: if even it has not waited long, jobs may be waiting in the queue.
    const slot = this.idle.values().next().value;
    if (slot === undefined || performance.now() - slot.since < IDLE_PROOF_MS) return undefined;
    this.idle.delete(slot);
    let end!: () => void;
    slot.loan = new Promise<void>((resolve) => (end = resolve));
    slot.pull.abort();
    this.lentTo.set(userId, lent + 1);
    this.busyGauge.set(++this.busy);
    this.deps.queueMetrics.bypassed.inc();
    const started = performance.now();
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const left = (this.lentTo.get(userId) ?? 1) - 1;
        if (left > 0) this.lentTo.set(userId, left);
        else this.lentTo.delete(userId);
        this.busyGauge.set(--this.busy);
        this.observeJob(performance.now() - started);
        end();
      },
    };
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
      const slot: IdleSlot = { pull: new AbortController(), since: performance.now(), loan: undefined };
      const stopPull = (): void => slot.pull.abort();
      signal.addEventListener('abort', stopPull, { once: true });
      this.idle.add(slot);
      let msg: QueuedMessage | null = null;
      let failed = false;
      try {
        msg = await queue.pull(slot.pull.signal, PULL_EXPIRES_MS);
      } catch (err) {
        failed = true;
        logger.debug({ err: (err as Error).message }, 'work queue pull failed; trying again');
      } finally {
        this.idle.delete(slot);
        signal.removeEventListener('abort', stopPull);
      }
      if (slot.loan !== undefined) {
        // Lent while a job was on its way here: it goes back to the queue, for the next free slot.
        msg?.nak();
        await slot.loan;
        continue;
      }
      if (failed) {
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
    this.observeJob(performance.now() - started);
    // A newer delivery of this job runs here now (it came back while this one stalled): that one acks.
    if (handedBack || running.replaced) return;
    // The slot takes its next job at once; the acknowledgement is confirmed in the background.
    void msg.ack();
  }

  private observeJob(ms: number): void {
    this.meanJobMs = this.meanJobMs === undefined ? ms : this.meanJobMs + EWMA_WEIGHT * (ms - this.meanJobMs);
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
