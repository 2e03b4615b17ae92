import type { BusHeaders } from '../bus/bus.js';
import {
  QueueFullError,
  QueueUnavailableError,
  type QueuedMessage,
  type QueueStats,
  type Enqueued,
  type WorkQueue,
  type WorkQueueLimits,
} from './work-queue.js';

interface Job {
  shard: string;
  msgId: string;
  data: Uint8Array;
  headers: BusHeaders;
  deliveries: number;
  /** The delivery now out, if any; a stale one's calls are ignored. */
  current: Delivery | undefined;
  expireTimer: NodeJS.Timeout;
}

interface Delivery {
  job: Job;
  timer: NodeJS.Timeout | undefined;
  done: boolean;
}

interface Waiter {
  give(job: Job): void;
}

/** How long a message id is remembered to drop a repeated publish (JetStream's duplicate window). */
const DUPLICATE_WINDOW_MS = 60_000;

/**
 * The work queue inside one process (embedded mode, in-process tests), with the JetStream queue's rules:
 * the same bounds (all jobs, per user shard), ack wait with `working`, redelivery up to `maxDeliver`, `nak`.
 */
export class MemoryWorkQueue implements WorkQueue {
  readonly kind = 'memory';
  private readonly waiting: Job[] = [];
  private readonly jobs = new Set<Job>();
  private readonly perShard = new Map<string, number>();
  private readonly seen = new Map<string, number>();
  private waiters: Waiter[] = [];
  private closed = false;

  constructor(readonly limits: WorkQueueLimits) {}

  async ready(): Promise<void> {}

  async enqueue(shard: string, data: Uint8Array, opts: { msgId: string; headers?: BusHeaders }): Promise<Enqueued> {
    if (this.closed) throw new QueueUnavailableError('the queue is closed');
    this.forgetOldIds();
    if (this.seen.has(opts.msgId)) return { duplicate: true };
    if (this.jobs.size >= this.limits.maxJobs) throw new QueueFullError('queue_full');
    if ((this.perShard.get(shard) ?? 0) >= this.limits.maxPerUser) throw new QueueFullError('user_share');
    this.seen.set(opts.msgId, Date.now());
    const job: Job = {
      shard,
      msgId: opts.msgId,
      data: data.slice(),
      headers: { ...opts.headers },
      deliveries: 0,
      current: undefined,
      expireTimer: setTimeout(() => this.remove(job), this.limits.maxAgeMs),
    };
    job.expireTimer.unref();
    this.jobs.add(job);
    this.perShard.set(shard, (this.perShard.get(shard) ?? 0) + 1);
    this.offer(job);
    return { duplicate: false };
  }

  pull(signal: AbortSignal, expiresMs = 30_000): Promise<QueuedMessage | null> {
    if (this.closed) return Promise.reject(new QueueUnavailableError('the queue is closed'));
    if (signal.aborted) return Promise.resolve(null);
    const next = this.waiting.shift();
    if (next) return Promise.resolve(this.deliver(next));
    return new Promise((resolve) => {
      const waiter: Waiter = {
        give: (job) => {
          finish();
          resolve(this.deliver(job));
        },
      };
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.waiters = this.waiters.filter((w) => w !== waiter);
      };
      const onAbort = () => {
        finish();
        resolve(null);
      };
      const timer = setTimeout(onAbort, expiresMs);
      timer.unref();
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  async stats(): Promise<QueueStats> {
    return { jobs: this.jobs.size, waiting: this.waiting.length, running: this.jobs.size - this.waiting.length };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.jobs) {
      clearTimeout(job.expireTimer);
      if (job.current) clearTimeout(job.current.timer);
    }
  }

  private offer(job: Job): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter.give(job);
    else this.waiting.push(job);
  }

  private deliver(job: Job): QueuedMessage {
    job.deliveries += 1;
    const d: Delivery = { job, timer: undefined, done: false };
    job.current = d;
    const arm = () => {
      clearTimeout(d.timer);
      d.timer = setTimeout(() => this.redeliver(d, 0), this.limits.ackWaitMs);
      d.timer.unref();
    };
    arm();
    return {
      data: job.data,
      headers: job.headers,
      deliveryCount: job.deliveries,
      working: () => {
        if (!d.done && job.current === d) arm();
      },
      ack: async () => {
        if (d.done) return;
        d.done = true;
        clearTimeout(d.timer);
        if (this.jobs.has(job)) this.remove(job);
      },
      nak: (delayMs = 0) => this.redeliver(d, delayMs),
    };
  }

  /** The delivery ended without an ack: the job goes back, unless it has had its deliveries. */
  private redeliver(d: Delivery, delayMs: number): void {
    if (d.done) return;
    d.done = true;
    clearTimeout(d.timer);
    const { job } = d;
    if (!this.jobs.has(job) || job.current !== d) return;
    job.current = undefined;
    // As JetStream does, a job that used up its deliveries stays until it ages out; it is not delivered again.
    if (job.deliveries >= this.limits.maxDeliver) return;
    if (delayMs <= 0) return this.offer(job);
    setTimeout(() => this.jobs.has(job) && this.offer(job), delayMs).unref();
  }

  private remove(job: Job): void {
    if (!this.jobs.delete(job)) return;
    clearTimeout(job.expireTimer);
    if (job.current) clearTimeout(job.current.timer);
    const i = this.waiting.indexOf(job);
    if (i >= 0) this.waiting.splice(i, 1);
    const n = (this.perShard.get(job.shard) ?? 1) - 1;
    if (n <= 0) this.perShard.delete(job.shard);
    else this.perShard.set(job.shard, n);
  }

  private forgetOldIds(): void {
    const cutoff = Date.now() - DUPLICATE_WINDOW_MS;
    for (const [id, at] of this.seen) {
      if (at >= cutoff) break;
      this.seen.delete(id);
    }
  }
}
