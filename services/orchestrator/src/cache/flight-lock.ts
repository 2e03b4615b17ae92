/** The right to compute one key's answer, held by one worker in the whole cluster until released. */
export interface FlightLease {
  readonly key: string;
  /** What proves the holding: a job that carries it can take the lease over (`FlightLock.adopt`). */
  readonly token: string;
  /** Gives the key up (only if still held) and wakes the waiters. Never throws. */
  release(): Promise<void>;
  /** Keeps the lease for `leaseMs` more from now; false when it was lost (expired, or the backend is down). */
  extend(leaseMs: number): Promise<boolean>;
}

/**
 * `busy`: another worker computes the answer: wait for it with `waitForRelease`.
 * `unavailable`: the backend cannot coordinate (down): compute without waiting (fail open).
 */
export type FlightAttempt = FlightLease | 'busy' | 'unavailable';

/**
 * Why a wait ended: the holder let the key go (or its lease ran out), the wait timed out, the waiter was
 * aborted, or the backend failed (the waiter should not keep waiting on something it cannot see).
 */
export type WaitOutcome = 'released' | 'timeout' | 'aborted' | 'unavailable';

export interface WaitOptions {
  /** Stop waiting when aborted, e.g. when the client went away. */
  signal?: AbortSignal | undefined;
  timeoutMs: number;
}

/**
 * Single-flight locks with leases: a holder that dies frees its keys when the lease runs out, so leases are
 * short and renewed while the holder works. Redis-backed locks span every replica; memory ones one process.
 */
export interface FlightLock {
  /** Tries to become the one worker computing `key`, for `leaseMs` unless extended. */
  acquire(key: string, leaseMs: number): Promise<FlightAttempt>;
  /**
   * Takes over the lease that `token` holds on `key` (a reservation made when the job was queued), for
   * `leaseMs` from now; undefined when the token does not hold the key any more (expired, taken over) or the
   * backend is down.
   */
  adopt(key: string, token: string, leaseMs: number): Promise<FlightLease | undefined>;
  /** Gives `key` up if `token` still holds it, and wakes the waiters. Never throws. */
  release(key: string, token: string): Promise<void>;
  /** Whether some worker holds `key` now; false when the backend cannot tell (fail open). Never throws. */
  isHeld(key: string): Promise<boolean>;
  /** Resolves once `key` is not held any more, or on timeout, abort or a backend failure. Never throws. */
  waitForRelease(key: string, opts: WaitOptions): Promise<WaitOutcome>;
  /** Wakes every waiter (`unavailable`) and closes what the lock opened. */
  close(): Promise<void>;
}
