import type { BusHeaders } from '../bus/bus.js';

/**
 * The bounds and timers of the work queue (`MAX_IN_FLIGHT` is the worker's own, not the queue's).
 * Every bound counts jobs waiting and running: a job leaves the queue when its worker acknowledges it.
 */
export interface WorkQueueLimits {
  /** Jobs in the queue at most; one more is refused at once (`queue_full`). */
  maxJobs: number;
  /** Jobs of one user (one user shard) at most (`user_share`). */
  maxPerUser: number;
  /** A delivered job not acknowledged nor kept alive (`working`) for this long goes to another worker. */
  ackWaitMs: number;
  /** Deliveries of one job at most (a job that kills every worker that takes it stops there). */
  maxDeliver: number;
  /** Copies of the queue in a NATS cluster (1 on a single server, 3 on a cluster of three). */
  replicas: number;
  /** A job older than this is dropped by the queue itself (it is long past any request deadline). */
  maxAgeMs: number;
}

/** One job handed to one worker. */
export interface QueuedMessage {
  readonly data: Uint8Array;
  readonly headers: BusHeaders;
  /** 1 on the first delivery; more when an earlier worker died, stalled, or handed it back. */
  readonly deliveryCount: number;
  /** Still working on it: restarts the ack wait. */
  working(): void;
  /** Done (answered, failed, cancelled or expired): the job leaves the queue. Never throws. */
  ack(): Promise<void>;
  /** Not done here: deliver it again (to any worker) after `delayMs`. Never throws. */
  nak(delayMs?: number): void;
}

export type QueueFullReason = 'queue_full' | 'user_share';

/** The queue refused a job: it is full, or the user already has their share in it. */
export class QueueFullError extends Error {
  constructor(readonly reason: QueueFullReason) {
    super(reason === 'queue_full' ? 'the work queue is full' : "the user's share of the work queue is used");
    this.name = 'QueueFullError';
  }
}

/** The queue cannot be reached now (no JetStream, a leader election, a lost connection). */
export class QueueUnavailableError extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'QueueUnavailableError';
  }
}

export interface QueueStats {
  /** Jobs in the queue: waiting and running. */
  jobs: number;
  /** Not yet taken by a worker. */
  waiting: number;
  /** Taken, not yet acknowledged. */
  running: number;
}

/**
 * The model lane's queue: jobs that need a model call wait here, outside any worker's memory, until a
 * worker has a free slot; a job whose worker dies is delivered again. JetStream on NATS; in memory for the
 * embedded mode and in-process tests (one place picks: `createWorkQueue`).
 */
/** What the queue did with a job it was given. */
export interface Enqueued {
  /** A job with the same `msgId` was queued already: this one was dropped in its favour. */
  duplicate: boolean;
}

export interface WorkQueue {
  readonly kind: 'jetstream' | 'memory';
  readonly limits: WorkQueueLimits;
  /** Creates or updates what the queue needs (idempotent, safe from every worker at once). */
  ready(): Promise<void>;
  /**
   * Adds a job under `shard` (the user's share). Resolves once the queue holds it; a second job with the same
   * `msgId` is taken for the first (a repeated publish): `duplicate` says so, the queue holds the first one's data.
   * Rejects with `QueueFullError` or `QueueUnavailableError`.
   */
  enqueue(shard: string, data: Uint8Array, opts: { msgId: string; headers?: BusHeaders }): Promise<Enqueued>;
  /**
   * The next job for a free slot, or null when none came within `expiresMs` or `signal` aborted. A job that
   * arrives after the abort is handed back at once. Rejects with `QueueUnavailableError`.
   */
  pull(signal: AbortSignal, expiresMs?: number): Promise<QueuedMessage | null>;
  /** Undefined when they cannot be read now. */
  stats(): Promise<QueueStats | undefined>;
  close(): Promise<void>;
}
