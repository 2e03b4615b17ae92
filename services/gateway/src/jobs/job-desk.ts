import { randomUUID } from 'node:crypto';
import {
  AppError,
  CANCELLED_ERROR,
  encodeJson,
  evictionPolicy,
  isTerminalJobState,
  JOB_DEFAULT_TASK_TYPE,
  JOB_QUEUE,
  WEBHOOK_QUEUE,
  JobSubjects,
  toJobView,
  type Bus,
  type JobEndings,
  type JobEvents,
  type JobList,
  type JobQueue,
  type WebhookQueue,
  type JobRecord,
  type JobStore,
  type JobView,
  type Logger,
  type Redis,
  type WebhookPolicy,
} from '@actionedx/shared';
import { parseJobSubmission } from './job-submission.js';

export interface JobDeskDeps {
  /** The queue Redis client the store uses: its status decides whether jobs are available. */
  redis: Redis;
  store: JobStore;
  queue: JobQueue;
  webhooks: WebhookQueue;
  events: JobEvents;
  endings: JobEndings;
  policy: WebhookPolicy;
  bus: Bus;
  logger: Logger;
}

const UNAVAILABLE_DOWN = 'The job queue is unreachable; try again shortly.';
/** How long a request waits for a connection attempt already under way. */
const CONNECT_WAIT_MS = 300;

/**
 * The gateway's side of background jobs: submit (record, then queue), read, list and cancel, for their owner
 * only. It never runs a job; the job workers do. Fails fast with 503 jobs_unavailable when the queue Redis is down
 * or evicts keys (a queue there would lose jobs).
 */
export class JobDesk {
  /** Set when the queue Redis evicts: jobs are refused until it is fixed (checked again on each reconnect). */
  private evicting: string | undefined;

  constructor(private readonly deps: JobDeskDeps) {}

  /** Checks the eviction policy now and after every reconnect. */
  start(): void {
    const check = () =>
      void evictionPolicy(this.deps.redis).then(
        (policy) => {
          this.evicting = policy === 'noeviction' ? undefined : policy;
          if (this.evicting) {
            this.deps.logger.error(
              { policy },
              `the queue Redis evicts keys (maxmemory-policy ${policy}): refusing jobs; run it with --maxmemory-policy noeviction`,
            );
          }
        },
        (err: unknown) => this.deps.logger.warn({ err }, 'could not read the queue Redis eviction policy'),
      );
    this.deps.redis.on('ready', check);
    if (this.deps.redis.status === 'ready') check();
  }

  /** Whether jobs can be submitted now, and why not. */
  status(): { available: boolean; reason?: string } {
    if (this.deps.redis.status !== 'ready') return { available: false, reason: 'queue Redis unreachable' };
    if (this.evicting) return { available: false, reason: `queue Redis evicts keys (${this.evicting})` };
    return { available: true };
  }

  /** A connection attempt under way (at start) gets a moment; a Redis that is down does not hold the request. */
  private async connected(): Promise<boolean> {
    const { redis } = this.deps;
    if (redis.status === 'ready') return true;
    if (redis.status !== 'connecting' && redis.status !== 'connect' && redis.status !== 'wait') return false;
    let onReady: (() => void) | undefined;
    const ready = new Promise<boolean>((resolve) => redis.once('ready', (onReady = () => resolve(true))));
    const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), CONNECT_WAIT_MS).unref());
    const ok = await Promise.race([ready, timer]);
    if (onReady) redis.off('ready', onReady);
    return ok;
  }

  private async assertAvailable(): Promise<void> {
    if (!(await this.connected())) throw new AppError('jobs_unavailable', UNAVAILABLE_DOWN);
    if (this.evicting) {
      throw new AppError(
        'jobs_unavailable',
        `The job queue's Redis evicts keys (maxmemory-policy ${this.evicting}) and could lose jobs; it must run with noeviction.`,
      );
    }
  }

  async submit(caller: string, body: unknown): Promise<JobView> {
    const { store, queue } = this.deps;
    const job = parseJobSubmission({ ...(body as object), user_id: caller }, this.deps.policy);
    try {
      await this.assertAvailable();
      const rec = await store.create({
        id: `job-${randomUUID()}`,
        kind: job.kind,
        owner: caller,
        task_type: job.task_type ?? JOB_DEFAULT_TASK_TYPE[job.kind],
        mode: job.mode,
        title: job.input.title ?? null,
        session_id: job.session_id ?? null,
        use_cache: job.use_cache,
        input: job.input,
        webhook_url: job.webhook_url ?? null,
        created_at: Date.now(),
        steps_total: 0,
      });
      try {
        await queue.add(job.kind, rec.id);
      } catch (err) {
        // Not queued: the record must not wait for a worker that will never come.
        await store.update(rec.id, { state: 'failed', finished_at: Date.now(), error: { code: 'jobs_unavailable', message: UNAVAILABLE_DOWN, retryable: true } }).catch(() => false);
        throw err instanceof AppError ? err : new AppError('jobs_unavailable', UNAVAILABLE_DOWN, { cause: err });
      }
      await this.deps.events
        .emit(caller, { type: 'job_progress', job_id: rec.id, kind: rec.kind, state: 'queued', percent: 0, message: 'queued', steps_done: 0, steps_total: 0 })
        .catch((err: unknown) => this.deps.logger.warn({ err, job_id: rec.id }, 'could not publish the queued event'));
      this.deps.logger.info({ job_id: rec.id, kind: rec.kind }, 'job queued');
      return toJobView(rec);
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError('jobs_unavailable', UNAVAILABLE_DOWN, { cause: err });
    }
  }

  /** The caller's job; `not_found` for a job that does not exist or is someone else's (never tell which). */
  async get(caller: string, id: string): Promise<JobRecord> {
    await this.assertReadable();
    const rec = await this.read(() => this.deps.store.get(id));
    if (!rec || rec.owner !== caller) throw new AppError('not_found', 'No such job.');
    return rec;
  }

  async list(caller: string, offset: number, limit: number): Promise<JobList> {
    await this.assertReadable();
    const { jobs, total } = await this.read(() => this.deps.store.list(caller, offset, limit));
    const next = offset + limit < total ? offset + limit : null;
    return { jobs: jobs.map((j) => toJobView(j, { withResult: false })), total, next_offset: next };
  }

  /**
   * Cancels the caller's job: a queued one ends at once; a running one is told to stop (its running model call is
   * aborted) and ends as soon as its worker sees it. `done` says whether it has ended already.
   */
  async cancel(caller: string, id: string): Promise<{ view: JobView; done: boolean }> {
    const rec = await this.get(caller, id);
    if (rec.state === 'cancelled') return { view: toJobView(rec), done: true };
    if (isTerminalJobState(rec.state)) throw new AppError('job_finished', `The job has already ${rec.state}.`);
    await this.read(() => this.deps.store.requestCancel(id));
    const where = await this.read(() => this.deps.queue.remove(id));
    if (where === 'removed') {
      await this.deps.endings.failed(rec, 'cancelled', CANCELLED_ERROR);
    } else {
      this.deps.bus.publish(JobSubjects.cancel, encodeJson({ job_id: id }));
    }
    this.deps.logger.info({ job_id: id, where }, 'job cancel requested');
    const now = (await this.read(() => this.deps.store.get(id))) ?? rec;
    return { view: toJobView(now), done: isTerminalJobState(now.state) };
  }

  /** BullMQ's counts of the job and webhook queues (`jobs_queue_depth`); rejects while the queue Redis is away. */
  async counts(): Promise<Record<string, Record<string, number>>> {
    await this.assertReadable();
    const [jobs, hooks] = await Promise.all([
      this.deps.queue.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'),
      this.deps.webhooks.queue.getJobCounts('waiting', 'active', 'delayed', 'failed'),
    ]);
    return { [JOB_QUEUE]: jobs, [WEBHOOK_QUEUE]: hooks };
  }

  /** The job's kept events after `afterSeq` (SSE replay). */
  events(id: string, afterSeq: number) {
    return this.read(() => this.deps.store.events(id, afterSeq));
  }

  private async assertReadable(): Promise<void> {
    if (!(await this.connected())) throw new AppError('jobs_unavailable', UNAVAILABLE_DOWN);
  }

  /** A store call whose failure (the queue Redis went away mid-request) is a 503, not a 500. */
  private async read<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError('jobs_unavailable', UNAVAILABLE_DOWN, { cause: err });
    }
  }
}
