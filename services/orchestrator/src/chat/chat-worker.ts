import {
  CancelMessageSchema,
  ChatJobSchema,
  decodeJson,
  encodeJson,
  Headers,
  QueueGroups,
  runWithContext,
  Subjects,
  type AiMetrics,
  type Bus,
  type BusMessage,
  type BusMetrics,
  type BusSubscription,
  type ChatJob,
  type Logger,
  type QueueMetrics,
  type WorkerPing,
} from '@actionedx/shared';
import type { QueueStats, WorkQueue } from '@actionedx/shared';
import type { ChatPipeline } from './chat-pipeline.js';
import { LookupLane } from './lookup-lane.js';
import { ModelLane } from './model-lane.js';
import { RunningJobs } from './running-jobs.js';

/** How often the queue's depth is read for the metrics and the `queued` frames. */
const QUEUE_STATS_MS = 2_000;

export interface ChatWorkerDeps {
  bus: Bus;
  pipeline: ChatPipeline;
  /** Where misses wait for a model slot (JetStream on NATS, in memory on the in-process bus). */
  queue: WorkQueue;
  /** Model calls at most at once on this worker (`MAX_IN_FLIGHT`). */
  maxInFlight: number;
  /** A miss runs at once in a model slot waiting on an empty queue (`QUEUE_BYPASS_WHEN_IDLE`). */
  bypassQueueWhenIdle: boolean;
  workerId: string;
  logger: Logger;
  aiMetrics: AiMetrics;
  queueMetrics: QueueMetrics;
  busMetrics?: BusMetrics;
  /** The models each task type's route may use, told in pings (the gateway's OpenAI-compatible model list). */
  routes?: WorkerPing['routes'];
}

/**
 * One orchestrator's chat work, in two lanes. The lookup lane takes every job from the bus (queue group, no
 * limit): cache hits and followers of a running computation are answered there, misses go to the work queue,
 * or run at once in a model slot that waits on an empty queue. The model lane runs `maxInFlight` slots that pull
 * from that queue. Cancels reach both lanes.
 */
export class ChatWorker {
  private readonly jobs: RunningJobs;
  private readonly lookup: LookupLane;
  private readonly model: ModelLane;
  private readonly queueMetrics: QueueMetrics;
  private subs: BusSubscription[] = [];
  private cancelSub: BusSubscription | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private lastStats: QueueStats | undefined;
  private draining = false;
  private lookups = 0;

  constructor(private readonly deps: ChatWorkerDeps) {
    this.queueMetrics = deps.queueMetrics;
    this.jobs = new RunningJobs(deps.aiMetrics.inFlight);
    this.queueMetrics.limit.set(deps.queue.limits.maxJobs);
    const lanes = { bus: deps.bus, pipeline: deps.pipeline, queue: deps.queue, jobs: this.jobs, workerId: deps.workerId, logger: deps.logger, queueMetrics: this.queueMetrics, busMetrics: deps.busMetrics };
    this.model = new ModelLane({ ...lanes, slots: deps.maxInFlight, lend: deps.bypassQueueWhenIdle });
    this.lookup = new LookupLane({ ...lanes, freeSlots: this.model, typicalJobMs: () => this.model.typicalJobMs, queueDepth: () => this.lastStats?.jobs });
  }

  /** Requests running here now, in either lane. */
  get inFlight(): number {
    return this.jobs.size;
  }

  /** Model-lane slots busy now. */
  get busySlots(): number {
    return this.model.busySlots;
  }

  start(): void {
    const { bus } = this.deps;
    this.subs = [
      bus.subscribe(Subjects.chatRequest, (m) => this.onJob(m), { queue: QueueGroups.orchestrators }),
      bus.subscribe(Subjects.workerPing, (m) => this.onPing(m), { queue: QueueGroups.orchestrators }),
    ];
    this.cancelSub = bus.subscribe(Subjects.chatCancel, (m) => this.onCancel(m));
    this.model.start();
    this.statsTimer = setInterval(() => void this.readStats(), QUEUE_STATS_MS);
    this.statsTimer.unref();
    void this.readStats();
  }

  /**
   * The drain: stop taking jobs (both lanes), let running ones finish within `graceMs`, then hand model-lane
   * jobs back to the queue (another worker takes them at once) and end lookup-lane ones with `shutting_down`.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.draining = true;
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    clearInterval(this.statsTimer);
    const slotsDone = this.model.stop();
    const deadline = Date.now() + graceMs;
    while ((this.jobs.size > 0 || this.lookups > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    if (this.jobs.size > 0) {
      this.deps.logger.warn({ in_flight: this.jobs.size }, 'grace period over: handing running jobs back');
      this.jobs.abortAll();
    }
    await Promise.race([slotsDone, new Promise((r) => setTimeout(r, 1_000))]);
    // Hand-backs and last frames leave before the bus closes.
    await this.deps.bus.flush().catch(() => {});
    this.cancelSub?.unsubscribe();
    this.cancelSub = undefined;
  }

  private onJob(msg: BusMessage): void {
    let job: ChatJob;
    try {
      job = decodeJson(ChatJobSchema, msg.data);
    } catch (err) {
      this.deps.logger.warn({ err }, 'dropped a malformed chat job');
      return;
    }
    if (this.draining) return; // no ack: the gateway sends it to another worker
    const traceparent = msg.headers[Headers.traceparent];
    const headers = { [Headers.requestId]: job.request_id, ...(traceparent ? { [Headers.traceparent]: traceparent } : {}) };
    const ctx = { request_id: job.request_id, ...(traceparent ? { traceparent } : {}) };
    this.lookups++;
    void runWithContext(ctx, () => this.lookup.handle(job, headers)).finally(() => this.lookups--);
  }

  private onCancel(msg: BusMessage): void {
    try {
      const cancel = decodeJson(CancelMessageSchema, msg.data);
      const r = this.jobs.cancel(cancel);
      if (r) this.deps.logger.info({ request_id: cancel.request_id, attempt: r.attempt, reason: cancel.reason }, 'request cancelled');
    } catch {
      // A malformed cancel concerns no running request.
    }
  }

  private onPing(msg: BusMessage): void {
    if (!msg.reply) return;
    const data: WorkerPing = {
      worker_id: this.deps.workerId,
      in_flight: this.jobs.size,
      ...(this.deps.routes ? { routes: this.deps.routes } : {}),
    };
    this.deps.bus.publish(msg.reply, encodeJson({ ok: true, data }));
  }

  private async readStats(): Promise<void> {
    const stats = await this.deps.queue.stats();
    this.lastStats = stats;
    if (!stats) return;
    this.queueMetrics.jobs.set({ state: 'waiting' }, stats.waiting);
    this.queueMetrics.jobs.set({ state: 'running' }, stats.running);
  }
}
