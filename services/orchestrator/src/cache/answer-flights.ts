import { AppError, type CacheMetrics } from '@actionedx/shared';
import { checkPositiveInteger, type AnswerStore, type CacheEntry } from './answer-store.js';
import type { FlightAttempt, FlightLease, FlightLock } from './flight-lock.js';
import { LocalFlight, type FlightResult } from './local-flight.js';

export type { AnswerSource, FlightResult } from './local-flight.js';

/** What computing an answer gives: the entry, and whether it may be stored (it passed the quality check). */
export interface Computed {
  entry: CacheEntry;
  cacheable: boolean;
}

export interface GetOrComputeOptions {
  /** How long a computed answer stays stored. */
  ttlSeconds: number;
  /** Each piece of the answer as it comes: a stored answer is one piece. */
  onDelta: (delta: string) => void;
  /** The pieces so far are void: the computation started over (another model answers). */
  onReset?: () => void;
  /** This request's end (the client went away, its deadline passed); the shared work goes on for others. */
  signal: AbortSignal;
  /** Makes the answer when nobody has it; its signal aborts only when every request waiting for it is gone. */
  compute: (onDelta: (delta: string) => void, signal: AbortSignal, onReset: () => void) => Promise<Computed>;
  /** The caller has just looked the key up (`lookup`) and missed: go straight to the flight. */
  skipLookup?: boolean;
  /** The token of this request's reservation (`reserve`): the flight takes that lock over before acquiring one. */
  reservation?: string | undefined;
}

/**
 * The flight lock of a miss that waits in the work queue, held with a pending lease: identical misses follow it
 * instead of queueing their own. Its job carries the token; the model lane adopts it (`reservation`).
 */
export interface FlightReservation {
  readonly token: string;
  /** Gives the key up (only if this reservation still holds it) and wakes the waiters. Never throws. */
  release(): Promise<void>;
}

/** What a reservation came to, as counted in `cache_flight_reservations_total`. */
export type ReservationOutcome = 'reserved' | 'busy' | 'unavailable' | 'adopted' | 'expired' | 'released';

/** What a first look at a key finds: the stored answer, or whether someone is computing it now. */
export interface Lookup {
  entry: CacheEntry | null;
  /** A flight for this key runs in this process, or another replica holds its lock. */
  computing: boolean;
}

export interface FollowOptions {
  onDelta: (delta: string) => void;
  /** The pieces so far are void: the computation started over (another model answers). */
  onReset?: () => void;
  signal: AbortSignal;
}

export interface AnswerFlightsOptions {
  /**
   * Lease of a flight lock, renewed every third of it while the answer is computed: a replica that dies
   * frees its keys within this. Default 3 s.
   */
  leaseMs?: number;
  /** How long a request waits for another replica's answer before computing it itself. Default 120 s. */
  waitMs?: number;
  /**
   * Lease of a reservation (`reserve`): how long a queued miss holds its key before a model slot adopts it. Past
   * it, identical misses queue their own job. Default 10 s.
   */
  pendingMs?: number;
  /** Counts reservations by outcome. */
  metrics?: Pick<CacheMetrics, 'flightReservations'>;
}

/** Rounds of "someone else is computing" before a request computes the answer itself. */
const MAX_ROUNDS = 3;

/**
 * The cache's single flight, as a cacher owns it (lock → re-check → compute → store → unlock): identical
 * requests running at once, in this process or on any replica, share one computation.
 *
 * ```
 * get → hit                       → the stored answer               source 'cache'
 *     → miss → joined a local flight → its chunks, live             source 'peer'
 *            → lead a local flight → adopt the queued job's reservation, else acquire the lock
 *                 lease       → re-check → compute → answer followers → store → release   'model'
 *                 busy        → wait for release → stored? answer : try again             'peer'
 *                 unavailable → compute (fail open)                                       'model'
 * ```
 *
 * A miss put in the work queue reserves its key first (`reserve`, a pending lease): identical misses arriving
 * while it waits for a model slot see the key held and follow it (`lookup`, `follow`) instead of queueing.
 */
export class AnswerFlights {
  private readonly local = new Map<string, LocalFlight>();
  /** Requests waiting on another holder of a key (a reserved, queued miss), woken when its flight starts here. */
  private readonly awaitingLocal = new Map<string, Set<() => void>>();
  private readonly leaseMs: number;
  private readonly waitMs: number;
  private readonly pendingMs: number;
  private readonly reservations: CacheMetrics['flightReservations'] | undefined;

  constructor(
    private readonly store: AnswerStore,
    private readonly lock: FlightLock,
    opts: AnswerFlightsOptions = {},
  ) {
    this.leaseMs = opts.leaseMs ?? 3_000;
    this.waitMs = opts.waitMs ?? 120_000;
    this.pendingMs = opts.pendingMs ?? 10_000;
    this.reservations = opts.metrics?.flightReservations;
    checkPositiveInteger('leaseMs', this.leaseMs);
    checkPositiveInteger('pendingMs', this.pendingMs);
  }

  /** The namespace of the keys, to build them with `cacheKey(parts, flights.prefix)`. */
  get prefix(): string {
    return this.store.prefix;
  }

  /** Flights running in this process (for tests and health). */
  get inFlight(): number {
    return this.local.size;
  }

  /**
   * The stored answer (a hit is counted), or, on a miss, whether the answer is being computed right now, so
   * that a caller can follow that computation instead of starting (or queueing) its own.
   */
  async lookup(key: string): Promise<Lookup> {
    const entry = await this.store.get(key);
    if (entry) return { entry, computing: false };
    return { entry: null, computing: this.local.has(key) || (await this.lock.isHeld(key)) };
  }

  /**
   * Waits for the computation of `key` that runs now, without computing anything: joins this process's flight
   * (its chunks live), or waits for another replica to release the key and reads the stored answer. Undefined
   * when there is no answer in the end (the computation failed, was not cacheable, or the wait timed out).
   */
  async follow(key: string, opts: FollowOptions): Promise<FlightResult | undefined> {
    const flight = this.local.get(key);
    if (flight) return this.join(flight, opts);
    // The holder is elsewhere, or is a reserved miss still queued that may start here: whichever comes first,
    // its release or its flight starting in this process (then followed live, and counted as one of its followers:
    // it is not aborted while this request still waits for it).
    const startedHere = new AbortController();
    const wake = (): void => startedHere.abort();
    let waiting = this.awaitingLocal.get(key);
    if (!waiting) this.awaitingLocal.set(key, (waiting = new Set()));
    waiting.add(wake);
    let outcome: Awaited<ReturnType<FlightLock['waitForRelease']>>;
    try {
      outcome = await this.lock.waitForRelease(key, { signal: AbortSignal.any([opts.signal, startedHere.signal]), timeoutMs: this.waitMs });
    } finally {
      waiting.delete(wake);
      if (waiting.size === 0 && this.awaitingLocal.get(key) === waiting) this.awaitingLocal.delete(key);
    }
    if (outcome === 'aborted' && opts.signal.aborted) throw opts.signal.reason ?? new AppError('cancelled');
    const started = this.local.get(key);
    if (outcome === 'aborted') return started ? this.join(started, opts) : this.follow(key, opts);
    if (outcome !== 'released') return undefined;
    const entry = await this.store.get(key, { record: false });
    if (!entry) return undefined;
    opts.onDelta(entry.response);
    this.store.count('coalesced');
    return { entry, source: 'peer' };
  }

  /** Follows this process's flight of a key: its chunks so far, then live. Undefined when it fails. */
  private async join(flight: LocalFlight, opts: FollowOptions): Promise<FlightResult | undefined> {
    const detach = flight.follow(opts.onDelta, opts.signal, opts.onReset);
    try {
      const result = await settledOrAborted(flight.result, opts.signal);
      this.store.count('coalesced');
      return { entry: result.entry, source: 'peer' };
    } catch (err) {
      if (opts.signal.aborted) throw err;
      return undefined;
    } finally {
      detach();
    }
  }

  /**
   * Takes the flight lock of `key` for a miss about to wait in the work queue (a pending lease), so that identical
   * misses find it held and follow it (`lookup`, `follow`) instead of queueing too. `busy`: an identical miss
   * holds it already; `unavailable`: the backend is down (queue the miss without one).
   */
  async reserve(key: string): Promise<FlightReservation | 'busy' | 'unavailable'> {
    const attempt = await this.lock.acquire(key, this.pendingMs);
    if (typeof attempt === 'string') {
      this.countReservation(attempt);
      return attempt;
    }
    this.countReservation('reserved');
    return { token: attempt.token, release: () => this.releaseReservation(key, attempt.token) };
  }

  /** Gives up the reservation `token` made on `key` (its job was dropped), if it still holds the key. Never throws. */
  async releaseReservation(key: string, token: string): Promise<void> {
    this.countReservation('released');
    await this.lock.release(key, token);
  }

  async getOrCompute(key: string, opts: GetOrComputeOptions): Promise<FlightResult> {
    const stored = opts.skipLookup ? null : await this.store.get(key);
    if (stored) {
      if (opts.reservation !== undefined) void this.releaseReservation(key, opts.reservation);
      opts.onDelta(stored.response);
      return { entry: stored, source: 'cache' };
    }
    const joined = this.local.get(key);
    // The flight here waits for the lock this request reserved (it started without it): let it have the key.
    if (joined && opts.reservation !== undefined) void this.releaseReservation(key, opts.reservation);
    const flight = joined ?? this.lead(key, opts);
    const detach = flight.follow(opts.onDelta, opts.signal, opts.onReset);
    let source: FlightResult['source'] = 'model';
    try {
      const result = await settledOrAborted(flight.result, opts.signal);
      // Only the request that led the flight paid for its computation.
      source = joined ? 'peer' : result.source;
      return { entry: result.entry, source };
    } finally {
      detach();
      this.store.count(source === 'model' ? 'miss' : 'coalesced');
    }
  }

  private lead(key: string, opts: GetOrComputeOptions): LocalFlight {
    const flight = new LocalFlight();
    this.local.set(key, flight);
    for (const wake of this.awaitingLocal.get(key) ?? []) wake();
    void this.fly(flight, key, opts).finally(() => this.local.delete(key));
    return flight;
  }

  private async fly(flight: LocalFlight, key: string, opts: GetOrComputeOptions): Promise<void> {
    try {
      let adopted = opts.reservation === undefined ? undefined : await this.adopt(key, opts.reservation);
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const lease: FlightAttempt = adopted ?? (await this.lock.acquire(key, this.leaseMs));
        adopted = undefined;
        if (lease === 'busy') {
          const outcome = await this.lock.waitForRelease(key, { signal: flight.signal, timeoutMs: this.waitMs });
          if (outcome === 'aborted') throw flight.signal.reason ?? new AppError('cancelled');
          if (outcome === 'released' && (await this.answerFromStore(flight, key))) return;
          continue;
        }
        // A lease, or 'unavailable' (the backend is down): compute; failing open beats failing.
        return await this.computeUnder(lease === 'unavailable' ? undefined : lease, flight, key, opts);
      }
      await this.computeUnder(undefined, flight, key, opts);
    } catch (err) {
      flight.fail(err);
    }
  }

  private async computeUnder(lease: FlightLease | undefined, flight: LocalFlight, key: string, opts: GetOrComputeOptions): Promise<void> {
    const renew = lease && setInterval(() => void lease.extend(this.leaseMs), this.leaseMs / 3);
    renew?.unref();
    try {
      // Re-check under the lock: a leader may have stored the answer between our miss and our lease.
      if (lease && (await this.answerFromStore(flight, key))) return;
      const computed = await opts.compute((d) => flight.push(d), flight.signal, () => flight.reset());
      // Followers first, then the store: storing costs the clients no latency, and it still happens before the
      // lock is released, so the other replicas' waiters find the answer.
      flight.resolve({ entry: computed.entry, source: 'model' });
      if (computed.cacheable) await this.store.set(key, computed.entry, opts.ttlSeconds);
    } finally {
      clearInterval(renew);
      await lease?.release();
    }
  }

  /** The lease the lookup lane reserved for this job, made a normal one; undefined when it was lost meanwhile. */
  private async adopt(key: string, token: string): Promise<FlightLease | undefined> {
    const lease = await this.lock.adopt(key, token, this.leaseMs);
    this.countReservation(lease ? 'adopted' : 'expired');
    return lease;
  }

  private countReservation(outcome: ReservationOutcome): void {
    this.reservations?.labels(outcome).inc();
  }

  private async answerFromStore(flight: LocalFlight, key: string): Promise<boolean> {
    const entry = await this.store.get(key, { record: false });
    if (!entry) return false;
    flight.push(entry.response);
    flight.resolve({ entry, source: 'peer' });
    return true;
  }
}

/** Settles with `p`, or rejects as soon as `signal` aborts (the flight may go on for other followers). */
function settledOrAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  // The signal's reason is what the caller aborted with (an AppError): passed on as it is.
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.finally(() => signal.removeEventListener('abort', onAbort)).then(resolve, reject);
  });
}
