import { Queue, Worker, type Job } from 'bullmq';
import {
  assertNoEviction,
  decodeJson,
  isTerminalJobState,
  JOB_QUEUE,
  JobCancelMessageSchema,
  JobSubjects,
  queueConnection,
  runWithContext,
  WEBHOOK_QUEUE,
  type Bus,
  type BusSubscription,
  type JobEndings,
  type JobMetrics,
  type JobStore,
  type Logger,
  type QueuedJobData,
  type Redis,
  type WebhookDeliveryData,
  type WebhookQueue,
} from '@actionedx/shared';
import type { JobRunner } from './job-runner.js';
import type { WebhookSender } from './webhook-sender.js';

export interface JobWorkersDeps {
  /** The queue Redis (noeviction), for the job records; BullMQ opens its own connections to it. */
  redis: Redis;
  redisUrl: string;
  store: JobStore;
  endings: JobEndings;
  runner: JobRunner;
  webhooks: WebhookSender;
  /** Where endings queue webhook deliveries; counted here too. */
  webhookQueue: WebhookQueue;
  bus: Bus;
  metrics: JobMetrics;
  logger: Logger;
  workerId: string;
}

export interface JobWorkersOptions {
  /** Jobs run at once by this process. Default 2. */
  concurrency?: number;
  /** A job's lock, renewed at half of it; a dead worker's jobs go back to the queue about this long after. Default 30 s. */
  lockMs?: number;
  /** How often this worker looks for stalled jobs (their worker died). Default 30 s. */
  stalledIntervalMs?: number;
  /**
   * Jobs started per second across every worker of the queue. Default 50. Besides bounding bursts, BullMQ honours
   * a manual rate limit (`queue.rateLimit`, what a provider 429 sets) on every worker only when a limiter is set.
   */
  startsPerSecond?: number;
}

/** Times a job may be found stalled (its worker died) and go back to the queue before it fails. */
const MAX_STALLED = 3;

/**
 * The job workers of one process: a BullMQ worker on the job queue running each job through the runner, one on
 * the webhook queue, and a listener for cancels (any worker may hold the job, so every one listens).
 */
export class JobWorkers {
  private jobs: Worker<QueuedJobData> | undefined;
  private deliveries: Worker<WebhookDeliveryData> | undefined;
  /** For `rateLimit` (it pauses every worker of the queue) and counts. */
  readonly queue: Queue<QueuedJobData>;
  private cancelSub: BusSubscription | undefined;
  private running = 0;

  constructor(
    private readonly deps: JobWorkersDeps,
    private readonly opts: JobWorkersOptions = {},
  ) {
    this.queue = new Queue<QueuedJobData>(JOB_QUEUE, { connection: queueConnection(deps.redisUrl, `job-queue-${deps.workerId}`) });
    this.queue.on('error', (err) => deps.logger.debug({ err }, 'job queue connection error'));
  }

  get inFlight(): number {
    return this.running;
  }

  /**
   * Checks the queue Redis (reachable, `noeviction`: rejects with `EvictingRedisError` otherwise), then takes jobs.
   */
  async start(): Promise<void> {
    const { deps } = this;
    await waitForReady(deps.redis, 5_000);
    await assertNoEviction(deps.redis);
    const connection = queueConnection(deps.redisUrl, `job-worker-${deps.workerId}`);
    this.jobs = new Worker<QueuedJobData>(JOB_QUEUE, (job, _token, signal) => this.process(job, signal), {
      connection,
      name: deps.workerId,
      concurrency: this.opts.concurrency ?? 2,
      lockDuration: this.opts.lockMs ?? 30_000,
      stalledInterval: this.opts.stalledIntervalMs ?? 30_000,
      maxStalledCount: MAX_STALLED,
      limiter: { max: this.opts.startsPerSecond ?? 50, duration: 1_000 },
      autorun: false,
    });
    this.jobs.on('error', (err) => deps.logger.warn({ err }, 'job worker error'));
    this.jobs.on('stalled', (jobId) => void this.onStalled(jobId));
    this.jobs.on('failed', (job, err) => void this.onFailed(job, err));
    this.deliveries = new Worker<WebhookDeliveryData>(
      WEBHOOK_QUEUE,
      (job) => deps.webhooks.deliver(job.data, job.attemptsMade + 1, job.attemptsMade + 1 >= (job.opts.attempts ?? 1)),
      { connection: queueConnection(deps.redisUrl, `webhook-worker-${deps.workerId}`), concurrency: 4, autorun: false },
    );
    this.deliveries.on('error', (err) => deps.logger.warn({ err }, 'webhook worker error'));
    this.cancelSub = deps.bus.subscribe(JobSubjects.cancel, (msg) => {
      try {
        const { job_id } = decodeJson(JobCancelMessageSchema, msg.data);
        if (this.jobs?.cancelJob(job_id, 'cancelled')) deps.logger.info({ job_id }, 'job cancel: stopping its running step');
      } catch {
        // A malformed cancel concerns no job.
      }
    });
    void this.jobs.run().catch((err: unknown) => deps.logger.error({ err }, 'job worker stopped'));
    void this.deliveries.run().catch((err: unknown) => deps.logger.error({ err }, 'webhook worker stopped'));
    deps.logger.info({ worker_id: deps.workerId, concurrency: this.opts.concurrency ?? 2 }, 'taking background jobs');
  }

  ready(): boolean {
    return this.jobs?.isRunning() === true && this.deps.redis.status === 'ready';
  }

  /** BullMQ's counts of both queues, for `jobs_queue_depth`. */
  async counts(): Promise<Record<string, Record<string, number>>> {
    const [jobs, hooks] = await Promise.all([
      this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'),
      this.deps.webhookQueue.queue.getJobCounts('waiting', 'active', 'delayed', 'failed'),
    ]);
    return { [JOB_QUEUE]: jobs, [WEBHOOK_QUEUE]: hooks };
  }

  /**
   * Stops taking jobs and lets running ones finish for up to `graceMs`; then stops their steps and closes
   * without finishing them: their locks expire and another worker resumes them after the steps already stored.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.cancelSub?.unsubscribe();
    const workers = [this.jobs, this.deliveries].filter((w): w is Worker => w !== undefined);
    let timer: NodeJS.Timeout | undefined;
    const graceful = Promise.all(workers.map((w) => w.close())).then(() => true);
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    });
    const finished = await Promise.race([graceful, late]);
    clearTimeout(timer);
    if (!finished) {
      this.deps.logger.warn({ running: this.running }, 'grace period over: leaving running jobs to another worker');
      const forced = Promise.all(workers.map((w) => w.close(true)));
      this.jobs?.cancelAllJobs('shutting_down');
      await forced;
    }
    await this.queue.close();
  }

  private async process(job: Job<QueuedJobData>, signal: AbortSignal | undefined): Promise<string> {
    this.running += 1;
    this.deps.metrics.active.inc();
    try {
      return await runWithContext({ request_id: job.data.job_id }, () =>
        this.deps.runner.run({
          jobId: job.data.job_id,
          attempt: job.attemptsMade + 1,
          maxAttempts: job.opts.attempts ?? 1,
          started: Math.max(job.attemptsStarted ?? 0, job.attemptsMade + 1),
          signal: signal ?? new AbortController().signal,
          rateLimit: (ms) => this.queue.rateLimit(ms),
        }),
      );
    } finally {
      this.running -= 1;
      this.deps.metrics.active.dec();
    }
  }

  private async onStalled(jobId: string): Promise<void> {
    const rec = await this.deps.store.get(jobId).catch(() => undefined);
    this.deps.metrics.retries.inc({ kind: rec?.kind ?? 'unknown', reason: 'stalled' });
    this.deps.logger.warn({ job_id: jobId }, 'job stalled (its worker died): back in the queue');
  }

  /** A job BullMQ failed on its own (stalled too often): the record ends too, with the reason. */
  private async onFailed(job: Job<QueuedJobData> | undefined, err: Error): Promise<void> {
    if (!job?.finishedOn) return;
    const rec = await this.deps.store.get(job.data.job_id).catch(() => undefined);
    if (!rec || isTerminalJobState(rec.state)) return;
    const ended = await this.deps.endings
      .failed(rec, 'failed', { code: 'worker_lost', message: `The job could not be completed: ${err.message}`, retryable: true })
      .catch(() => false);
    if (ended) this.deps.metrics.failures.inc({ kind: rec.kind, reason: 'worker_lost' });
  }
}

/** Resolves once `redis` is connected; rejects with a clear message after `ms`. */
export async function waitForReady(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`the queue Redis did not answer within ${ms} ms`));
    }, ms);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}
