import { Queue, type JobsOptions } from 'bullmq';
import { AppError } from '../errors.js';
import type { JobKind } from '../contracts/jobs.js';

/** What a webhook tells its receiver about a job that ended. */
export type WebhookEvent = 'job.completed' | 'job.failed' | 'job.cancelled';

/** BullMQ queue of jobs (`bull:actionedx-jobs:*` on the queue Redis; `bull:actionedx-jobs:wait` is what KEDA counts). */
export const JOB_QUEUE = 'actionedx-jobs';
/** BullMQ queue of webhook deliveries, run by the job workers. */
export const WEBHOOK_QUEUE = 'actionedx-webhooks';

/** What a queued job carries: its id only; the input lives in the job record. */
export interface QueuedJobData {
  job_id: string;
}

export interface JobQueueOptions {
  /** The queue Redis (noeviction). */
  url: string;
  /** Tries of a job in all (a provider 429 does not use one up). Default 3. */
  attempts?: number;
  /** First retry delay; doubled at each retry, with up to half of it as random jitter. Default 2000. */
  backoffMs?: number;
  /** How long BullMQ keeps finished jobs (the job record has its own retention). Default 1 day. */
  keepSeconds?: number;
  /** An add (or a remove) that takes longer fails with `jobs_unavailable`. Default 2000. */
  addTimeoutMs?: number;
  onError?: (err: Error) => void;
}

/** The producer's side of the job queue (the gateway): add and remove jobs, count them. */
export class JobQueue {
  readonly queue: Queue<QueuedJobData>;
  private readonly defaults: JobsOptions;
  private readonly addTimeoutMs: number;

  constructor(opts: JobQueueOptions) {
    this.queue = new Queue<QueuedJobData>(JOB_QUEUE, { connection: queueConnection(opts.url, 'job-producer') });
    this.queue.on('error', (err) => opts.onError?.(err));
    const keep = opts.keepSeconds ?? 86_400;
    this.defaults = {
      attempts: opts.attempts ?? 3,
      backoff: { type: 'exponential', delay: opts.backoffMs ?? 2_000, jitter: 0.5 },
      removeOnComplete: { age: keep, count: 10_000 },
      removeOnFail: { age: keep },
    };
    this.addTimeoutMs = opts.addTimeoutMs ?? 2_000;
  }

  /** Queues the job (its record must exist); `jobs_unavailable` when the queue Redis does not take it in time. */
  async add(kind: JobKind, jobId: string): Promise<void> {
    await withTimeout(this.queue.add(kind, { job_id: jobId }, { ...this.defaults, jobId }), this.addTimeoutMs);
  }

  /** Takes a job out of the queue if no worker holds it: `removed`, or `running` (a worker has it). */
  async remove(jobId: string): Promise<'removed' | 'running'> {
    return withTimeout(
      (async () => {
        const job = await this.queue.getJob(jobId);
        if (!job) return 'removed' as const;
        if ((await job.getState()) === 'active') return 'running' as const;
        // 0 when a worker took it meanwhile (its lock protects it).
        return (await this.queue.remove(jobId)) === 1 ? ('removed' as const) : ('running' as const);
      })(),
      this.addTimeoutMs,
    );
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/** A webhook delivery: built from the job record when it is sent (so every retry carries the same view). */
export interface WebhookDeliveryData {
  job_id: string;
  event: WebhookEvent;
}

export interface WebhookQueueOptions {
  url: string;
  /** Delivery attempts in all. Default 6. */
  attempts?: number;
  /** First retry delay, doubled at each retry, with jitter. Default 1000. */
  backoffMs?: number;
  onError?: (err: Error) => void;
}

/** Queues webhook deliveries (at most one per job and event), retried with backoff by the job workers. */
export class WebhookQueue {
  readonly queue: Queue<WebhookDeliveryData>;
  private readonly defaults: JobsOptions;

  constructor(opts: WebhookQueueOptions) {
    this.queue = new Queue<WebhookDeliveryData>(WEBHOOK_QUEUE, { connection: queueConnection(opts.url, 'webhook-producer') });
    this.queue.on('error', (err) => opts.onError?.(err));
    this.defaults = {
      attempts: opts.attempts ?? 6,
      backoff: { type: 'exponential', delay: opts.backoffMs ?? 1_000, jitter: 0.5 },
      removeOnComplete: { age: 86_400, count: 10_000 },
      removeOnFail: { age: 7 * 86_400 },
    };
  }

  async add(data: WebhookDeliveryData): Promise<void> {
    await withTimeout(this.queue.add(data.event, data, { ...this.defaults, jobId: `${data.job_id}.${data.event}` }), 2_000);
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/** BullMQ's connection to the queue Redis: reconnects forever; `maxRetriesPerRequest: null` as workers need. */
export function queueConnection(url: string, name: string) {
  return {
    url,
    connectionName: name,
    maxRetriesPerRequest: null,
    connectTimeout: 2_000,
    retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 10), 2_000),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AppError('jobs_unavailable', 'The job queue did not answer in time.')), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
