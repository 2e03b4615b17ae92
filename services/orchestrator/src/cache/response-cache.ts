import { z } from 'zod';
import {
  UsageSchema,
  type CacheHealth,
  type CacheInvalidateRequest,
  type CacheInvalidateResult,
  type CacheStats,
  type CacheStatus,
} from '@actionedx/shared';

/** A cached answer, as stored (JSON) under its key. */
export const CacheEntrySchema = z.object({
  v: z.literal(1),
  response: z.string(),
  suggestions: z.array(z.string()),
  model: z.string(),
  usage: UsageSchema,
  cost_usd: z.number().nonnegative(),
  /** Epoch ms when the answer was produced. */
  created_at: z.number(),
});
export type CacheEntry = z.infer<typeof CacheEntrySchema>;

/** The stored text back to an entry; anything unreadable counts as absent rather than failing a request. */
export function decodeEntry(raw: string): CacheEntry | null {
  try {
    const parsed = CacheEntrySchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export interface LookupOptions {
  /**
   * Count the lookup in the hit/miss statistics. Default true; pass false for the re-check a flight leader
   * makes after taking its lease, which is the same request, not a new one.
   */
  record?: boolean;
}

/** The right to compute one key's answer, held by one worker in the whole cluster until released. */
export interface FlightLease {
  readonly key: string;
  /** Gives the key up (only if still held) and wakes the waiters. Never throws. */
  release(): Promise<void>;
  /** Keeps the lease for `leaseMs` more from now; false when it was lost (expired, or the cache is down). */
  extend(leaseMs: number): Promise<boolean>;
}

/**
 * `busy`: another worker computes the answer, wait for it with `waitForFlight`.
 * `unavailable`: the cache cannot coordinate (down): call the model without waiting (fail open).
 */
export type FlightAttempt = FlightLease | 'busy' | 'unavailable';

export interface WaitForFlightOptions {
  /** Stop waiting (resolving null) when aborted, e.g. when the client went away. */
  signal?: AbortSignal;
  /** Give up (resolving null) after this long. Default: the cache's `flightWaitTimeoutMs`. */
  timeoutMs?: number;
}

/**
 * The response cache of the orchestrators. It fails open: a broken or slow backend makes lookups miss and
 * stores do nothing within milliseconds, and never fails a request. Only the administrative `invalidate`
 * reports a backend failure (`cache_unavailable`), since the operator must know nothing was deleted.
 *
 * A miss is computed once across the cluster:
 * ```
 * lookup → miss → acquireFlight
 *   lease       → lookup({record:false}) again (a leader may have just finished) → model → store → release
 *   busy        → waitForFlight → the entry, or null (leader failed or timeout) → acquireFlight again
 *   unavailable → model (and store, which may fail open too)
 * ```
 */
export interface ResponseCache {
  readonly backend: 'redis' | 'memory';
  /** The namespace of the keys, to build them with `cacheKey(parts, cache.prefix)`. */
  readonly prefix: string;
  /** The entry under `key`, or null on a miss and on any failure. Throws only for a key outside `prefix`. */
  lookup(key: string, opts?: LookupOptions): Promise<CacheEntry | null>;
  /** Stores `entry` for `ttlSeconds` (a positive integer); false when it could not. */
  store(key: string, entry: CacheEntry, ttlSeconds: number): Promise<boolean>;
  /** Tries to become the one worker computing `key`, for at most `leaseMs` unless extended. */
  acquireFlight(key: string, leaseMs: number): Promise<FlightAttempt>;
  /**
   * Waits for the leader of `key`: its entry once stored, or null as soon as the lease is gone without one
   * (the leader failed: try to lead), on timeout, abort, or a backend failure. Never throws.
   */
  waitForFlight(key: string, opts?: WaitForFlightOptions): Promise<CacheEntry | null>;
  /** Connection state as of now, without any I/O. */
  status(): CacheStatus;
  /** Cluster-wide figures; zeros with status `disconnected` when the backend is down. Never throws. */
  stats(): Promise<CacheStats>;
  /** Deletes the answers matching a pattern and/or a task type (never counters or locks). */
  invalidate(req: CacheInvalidateRequest): Promise<CacheInvalidateResult>;
  /** Never throws. */
  health(): Promise<CacheHealth>;
  /** Refreshes the `cache_keys_total` and `cache_size_bytes` gauges every `intervalMs` (default 15 s). */
  startGauges(intervalMs?: number): void;
  /** Stops timers, wakes waiters (they get null) and closes the connections the cache opened. */
  close(): Promise<void>;
}

/** TTLs and leases are whole positive numbers; anything else is a programming error, reported at once. */
export function checkPositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}
