import { LRUCache } from 'lru-cache';
import { AppError, type CancelMessage } from '@actionedx/shared';

/** Requests whose cancel this worker heard, kept this long: a cancelled job may still wait in the queue. */
const CANCEL_MEMORY_MS = 10 * 60_000;
const CANCEL_MEMORY_ENTRIES = 50_000;

export interface RunningJob {
  readonly requestId: string;
  readonly attempt: number;
  /** 0 in the lookup lane; the queue's delivery count in the model lane. */
  readonly delivery: number;
  readonly signal: AbortSignal;
  /** A newer delivery of the same attempt took over here: this one must not acknowledge the queued job. */
  readonly replaced: boolean;
  /** Called on a shutdown past the grace period, before the abort (the model lane hands the job back). */
  onShutdown: (() => void) | undefined;
  end(): void;
}

interface Entry extends RunningJob {
  controller: AbortController;
  replaced: boolean;
  timer: NodeJS.Timeout;
}

/**
 * The requests this worker runs now, in either lane, one per request id: a new attempt (or delivery)
 * supersedes the old one; cancels and deadlines abort them. Cancels are remembered for a while so that a
 * job taken from the queue after its client went away is dropped without a model call.
 */
export class RunningJobs {
  private readonly running = new Map<string, Entry>();
  private readonly cancelled = new LRUCache<string, number>({ max: CANCEL_MEMORY_ENTRIES, ttl: CANCEL_MEMORY_MS });

  /** `gauge`: set to the number of running requests (`ai_requests_in_flight`). */
  constructor(private readonly gauge?: { set(value: number): void }) {}

  get size(): number {
    return this.running.size;
  }

  /**
   * Registers a job: `delivery` 0 for the lookup lane, the queue's delivery count in the model lane. A job older
   * than the one running here for the same request (an earlier attempt, or the same attempt's lookup lane or an
   * earlier delivery coming late) gets an already aborted handle: the gateway waits for the newer one.
   */
  begin(job: { request_id: string; attempt: number; deadline_at: number }, delivery = 0): RunningJob {
    const previous = this.running.get(job.request_id);
    if (previous && (previous.attempt > job.attempt || (previous.attempt === job.attempt && previous.delivery >= delivery))) {
      const stale = new AbortController();
      stale.abort(new AppError('cancelled', 'a newer run of this request is here'));
      return { requestId: job.request_id, attempt: job.attempt, delivery, signal: stale.signal, replaced: false, onShutdown: undefined, end: () => {} };
    }
    if (previous) {
      previous.replaced = previous.attempt === job.attempt;
      previous.controller.abort(new AppError('cancelled', 'superseded by a new attempt'));
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new AppError('deadline_exceeded')), Math.max(0, job.deadline_at - Date.now()));
    timer.unref();
    const entry: Entry = {
      requestId: job.request_id,
      attempt: job.attempt,
      delivery,
      signal: controller.signal,
      controller,
      replaced: false,
      timer,
      onShutdown: undefined,
      end: () => {
        clearTimeout(timer);
        if (this.running.get(job.request_id) === entry) this.running.delete(job.request_id);
        this.gauge?.set(this.running.size);
      },
    };
    this.running.set(job.request_id, entry);
    this.gauge?.set(this.running.size);
    return entry;
  }

  /** Aborts the request if it runs here, and remembers the cancel; true when it ran here. */
  cancel(msg: CancelMessage): RunningJob | undefined {
    const upTo = msg.up_to_attempt ?? Number.MAX_SAFE_INTEGER;
    this.cancelled.set(msg.request_id, Math.max(upTo, this.cancelled.get(msg.request_id) ?? -1));
    const r = this.running.get(msg.request_id);
    if (!r || r.attempt > upTo) return undefined;
    r.controller.abort(new AppError('cancelled'));
    return r;
  }

  /** The gateway gave up on this attempt (client gone, deadline, superseded) before it reached a slot. */
  wasCancelled(requestId: string, attempt: number): boolean {
    const upTo = this.cancelled.get(requestId);
    return upTo !== undefined && attempt <= upTo;
  }

  /** Past the grace period: hand back what can go back, abort the rest with `shutting_down`. */
  abortAll(): void {
    for (const r of this.running.values()) {
      r.onShutdown?.();
      r.controller.abort(new AppError('shutting_down'));
    }
  }
}
