import {
  AppError,
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
  type WorkerPing,
} from '@actionedx/shared';
import type { ChatPipeline } from './chat-pipeline.js';
import { FrameStream } from './frame-stream.js';

export interface ChatWorkerDeps {
  bus: Bus;
  pipeline: ChatPipeline;
  workerId: string;
  logger: Logger;
  aiMetrics: AiMetrics;
  busMetrics?: BusMetrics;
}

/**
 * Takes chat jobs from the bus in the orchestrators' queue group, acks each (with its first frame), runs it through
 * the pipeline and aborts it on cancel or deadline.
 */
export class ChatWorker {
  private readonly running = new Map<string, { controller: AbortController; attempt: number }>();
  private subs: BusSubscription[] = [];
  private draining = false;

  constructor(private readonly deps: ChatWorkerDeps) {}

  get inFlight(): number {
    return this.running.size;
  }

  start(): void {
    const { bus } = this.deps;
    this.subs = [
      bus.subscribe(Subjects.chatRequest, (m) => this.onJob(m), { queue: QueueGroups.orchestrators }),
      bus.subscribe(Subjects.chatCancel, (m) => this.onCancel(m)),
      bus.subscribe(Subjects.workerPing, (m) => this.onPing(m), { queue: QueueGroups.orchestrators }),
    ];
  }

  /** Stop taking jobs; resolve when running ones have ended or `graceMs` passed (then abort them). */
  async stop(graceMs = 10_000): Promise<void> {
    this.draining = true;
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    const deadline = Date.now() + graceMs;
    while (this.running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    for (const r of this.running.values()) r.controller.abort(new AppError('shutting_down'));
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
    const headers = {
      [Headers.requestId]: job.request_id,
      ...(msg.headers[Headers.traceparent] ? { [Headers.traceparent]: msg.headers[Headers.traceparent]! } : {}),
    };
    const ctx = { request_id: job.request_id, ...(headers.traceparent ? { traceparent: headers.traceparent } : {}) };
    void runWithContext(ctx, () => this.execute(job, headers));
  }

  private async execute(job: ChatJob, headers: Record<string, string>): Promise<void> {
    const { bus, pipeline, logger, aiMetrics, busMetrics } = this.deps;
    // A new attempt of a request supersedes the old one: the gateway has given up on it.
    this.running.get(job.request_id)?.controller.abort(new AppError('cancelled', 'superseded by a new attempt'));
    const controller = new AbortController();
    const entry = { controller, attempt: job.attempt };
    this.running.set(job.request_id, entry);
    const remaining = job.deadline_at - Date.now();
    const deadline = setTimeout(() => controller.abort(new AppError('deadline_exceeded')), Math.max(0, remaining));
    deadline.unref();
    const out = new FrameStream({
      bus,
      subject: job.reply_to,
      requestId: job.request_id,
      attempt: job.attempt,
      headers,
      heartbeatMs: job.heartbeat_ms,
      ack: { workerId: this.deps.workerId },
      ...(busMetrics ? { metrics: busMetrics } : {}),
    });
    aiMetrics.inFlight.inc();
    logger.debug({ attempt: job.attempt, task_type: job.request.task_type, mode: job.request.mode }, 'chat job started');
    try {
      await pipeline.run(job.request, out, controller.signal, job.request_id);
    } catch (err) {
      logger.error({ err }, 'chat pipeline threw');
      out.error('internal', 'Internal error.', true);
    } finally {
      clearTimeout(deadline);
      aiMetrics.inFlight.dec();
      if (this.running.get(job.request_id) === entry) this.running.delete(job.request_id);
    }
  }

  private onCancel(msg: BusMessage): void {
    try {
      const { request_id, reason, up_to_attempt } = decodeJson(CancelMessageSchema, msg.data);
      const r = this.running.get(request_id);
      if (r && (up_to_attempt === undefined || r.attempt <= up_to_attempt)) {
        this.deps.logger.info({ request_id, attempt: r.attempt, reason }, 'request cancelled');
        r.controller.abort(new AppError('cancelled'));
      }
    } catch {
      // A malformed cancel concerns no running request.
    }
  }

  private onPing(msg: BusMessage): void {
    if (!msg.reply) return;
    const data: WorkerPing = { worker_id: this.deps.workerId, in_flight: this.running.size };
    this.deps.bus.publish(msg.reply, encodeJson({ ok: true, data }));
  }
}
