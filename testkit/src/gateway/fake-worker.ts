import {
  AdminReplySchema,
  CancelMessageSchema,
  ChatJobSchema,
  QueueGroups,
  RetainedFrames,
  Subjects,
  decodeJson,
  encodeFrame,
  encodeJson,
  type AdminReply,
  type Bus,
  type BusHeaders,
  type BusSubscription,
  type CancelMessage,
  type ChatJob,
  type DoneFrame,
  type Frame,
} from '@actionedx/shared';

/**
 * Test doubles for the orchestrator side of the bus. The real orchestrator is tested end to end
 * elsewhere; these script exactly the frames a test needs.
 */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until `check` holds (or throw after `timeoutMs`). */
export async function waitFor(check: () => boolean, timeoutMs = 3_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** The frames of one job, as a worker sends them (and their retained copy for resumes, as a worker keeps it). */
export class JobControl {
  private seq = 0;
  private readonly retained: RetainedFrames | undefined;

  constructor(
    private readonly bus: Bus,
    readonly job: ChatJob,
    private readonly workerId: string,
  ) {
    this.retained = RetainedFrames.forReplyTo(job.reply_to, (to, data) => this.publishIfOpen(to, data));
  }

  /** The worker's ack, on the job's reply subject. */
  ack(reply: string): void {
    const frame: Frame = { type: 'ack', ...this.base(), worker_id: this.workerId };
    this.publishIfOpen(reply, encodeFrame(frame));
    this.retained?.add([frame], false);
  }

  /** Chunk frames sent so far. */
  get chunks(): number {
    return this.seq;
  }

  /** The next chunk; `seq` overrides the counter (to script a gap). */
  chunk(delta: string, seq?: number): void {
    this.send({ type: 'chunk', ...this.base(), seq: seq ?? this.seq, delta });
    this.seq = (seq ?? this.seq) + 1;
  }

  /** The chunks so far are void (the worker's model failed mid-answer): seq starts again at 0. */
  reset(): void {
    this.send({ type: 'reset', ...this.base() });
    this.seq = 0;
  }

  heartbeat(): void {
    this.send({ type: 'heartbeat', ...this.base() });
  }

  done(overrides: Partial<DoneFrame> = {}): void {
    const req = this.job.request;
    this.send({
      type: 'done',
      ...this.base(),
      chunks: this.seq,
      suggestions: ['Try the next pillar'],
      model: 'mock-model',
      mode: req.mode,
      task_type: req.task_type,
      cached: false,
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      cost_usd: 0.0001,
      latency_ms: 12,
      ttft_ms: 3,
      worker_id: this.workerId,
      ...overrides,
    });
  }

  error(code: string, message = 'failed', retryable = false): void {
    this.send({ type: 'error', ...this.base(), code, message, retryable });
  }

  /** Several chunks then `done`. */
  answer(parts: string[]): void {
    for (const p of parts) this.chunk(p);
    this.done();
  }

  private base(): { request_id: string; attempt: number } {
    return { request_id: this.job.request_id, attempt: this.job.attempt };
  }

  private send(frame: Frame): void {
    this.publishIfOpen(this.job.reply_to, encodeFrame(frame), { 'x-request-id': this.job.request_id });
    this.retained?.add([frame], frame.type === 'done' || frame.type === 'error');
  }

  private publishIfOpen(subject: string, data: Uint8Array, headers?: BusHeaders): void {
    // A script that outlives its test finds the bus closed: it just stops talking.
    if (this.bus.state() === 'closed') return;
    this.bus.publish(subject, data, headers ? { headers } : {});
  }
}

export type WorkerScript = (ctl: JobControl) => void | Promise<void>;

export interface FakeWorkerOptions {
  id?: string;
  /** Reply to the job request with an ack (default true); false scripts a worker that never acks. */
  ack?: boolean | ((job: ChatJob) => boolean);
  /** Unsubscribe right after acking a job, as a worker that died would (default false). */
  dieAfterAck?: boolean;
  script?: WorkerScript;
}

/** A scripted orchestrator in the `orchestrators` queue group. */
export class FakeWorker {
  readonly id: string;
  readonly jobs: Array<{ job: ChatJob; headers: BusHeaders }> = [];
  private subscription: BusSubscription | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly opts: FakeWorkerOptions = {},
  ) {
    this.id = opts.id ?? 'worker-a';
    this.subscription = bus.subscribe(
      Subjects.chatRequest,
      (msg) => {
        const job = decodeJson(ChatJobSchema, msg.data);
        this.jobs.push({ job, headers: msg.headers });
        const ack = typeof opts.ack === 'function' ? opts.ack(job) : (opts.ack ?? true);
        if (!ack) return;
        const ctl = new JobControl(bus, job, this.id);
        if (msg.reply) ctl.ack(msg.reply);
        if (opts.dieAfterAck) return this.stop();
        void opts.script?.(ctl);
      },
      { queue: QueueGroups.orchestrators },
    );
  }

  stop(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }
}

/** Scripts: answer with these parts. */
export const answerWith =
  (parts: string[]): WorkerScript =>
  (ctl) =>
    ctl.answer(parts);

/** Records every cancel published on `chat.v1.cancel`. */
export class CancelRecorder {
  readonly cancels: Array<{ message: CancelMessage; headers: BusHeaders }> = [];
  private readonly subscription: BusSubscription;

  constructor(bus: Bus) {
    this.subscription = bus.subscribe(Subjects.chatCancel, (msg) => {
      this.cancels.push({ message: decodeJson(CancelMessageSchema, msg.data), headers: msg.headers });
    });
  }

  has(requestId: string): boolean {
    return this.cancels.some((c) => c.message.request_id === requestId);
  }

  /** The cancels of one request in the order they were published, each as `{reason, up_to_attempt?}`. */
  of(requestId: string): Array<Omit<CancelMessage, 'request_id'>> {
    return this.cancels
      .filter((c) => c.message.request_id === requestId)
      .map(({ message: { request_id: _, ...rest } }) => rest);
  }

  stop(): void {
    this.subscription.unsubscribe();
  }
}

/** An orchestrator's administrative endpoint: records requests, answers with `reply`. */
export class FakeAdminEndpoint {
  readonly requests: Array<{ body: unknown; headers: BusHeaders }> = [];
  private readonly subscription: BusSubscription;

  constructor(bus: Bus, subject: string, reply: (body: unknown) => AdminReply | Uint8Array) {
    this.subscription = bus.subscribe(
      subject,
      (msg) => {
        const body = JSON.parse(new TextDecoder().decode(msg.data)) as unknown;
        this.requests.push({ body, headers: msg.headers });
        const answer = reply(body);
        if (msg.reply) bus.publish(msg.reply, answer instanceof Uint8Array ? answer : encodeJson(AdminReplySchema.parse(answer)));
      },
      { queue: QueueGroups.orchestrators },
    );
  }

  stop(): void {
    this.subscription.unsubscribe();
  }
}
