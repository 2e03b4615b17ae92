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
  /** The usage was counted with a tokenizer (the provider sent none). */
  usage_estimated: z.boolean().optional(),
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

/**
 * How a request that looked in the cache was answered: from a stored entry (`hit`), by its own model call
 * (`miss`), or by a model call another request made at the same time (`coalesced`, single flight).
 */
export type LookupOutcome = 'hit' | 'miss' | 'coalesced';

export interface GetOptions {
  /**
   * Count a hit in the statistics. Default true; false for the re-checks of a request already counted
   * (a flight leader under its lease, a waiter after the leader released).
   */
  record?: boolean;
}

/**
 * The answers of the cache, shared by every replica on Redis, or held in this process. It fails open: a
 * broken or slow backend makes `get` miss and `set` do nothing within milliseconds, never failing a request.
 * Only the administrative `invalidate` reports a backend failure (`cache_unavailable`): the operator must
 * know that nothing was deleted.
 */
export interface AnswerStore {
  readonly backend: 'redis' | 'memory';
  /** The namespace of the keys, to build them with `cacheKey(parts, store.prefix)`. */
  readonly prefix: string;
  /**
   * The entry under `key`, or null on a miss and on any failure; a hit is counted at once (in the same round
   * trip). Throws only for a key outside `prefix`.
   */
  get(key: string, opts?: GetOptions): Promise<CacheEntry | null>;
  /** Counts how a request that missed was answered in the end (cluster-wide figures and metrics). */
  count(outcome: Exclude<LookupOutcome, 'hit'>): void;
  /** Stores `entry` for `ttlSeconds` (a positive integer); false when it could not. */
  set(key: string, entry: CacheEntry, ttlSeconds: number): Promise<boolean>;
  /** Connection state as of now, without any I/O. */
  status(): CacheStatus;
  /** Cluster-wide figures; zeros with status `disconnected` when the backend is down. Never throws. */
  stats(): Promise<CacheStats>;
  /** Deletes the answers matching a pattern and/or a task type (never counters, locks or sessions). */
  invalidate(req: CacheInvalidateRequest): Promise<CacheInvalidateResult>;
  /** Never throws. */
  health(): Promise<CacheHealth>;
  /** Refreshes the `cache_keys_total` and `cache_size_bytes` gauges every `intervalMs` (default 15 s). */
  startGauges(intervalMs?: number): void;
  /** Stops timers and closes what the store opened. */
  close(): Promise<void>;
}

/** TTLs and leases are whole positive numbers; anything else is a programming error, reported at once. */
export function checkPositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}

/** hits over every lookup that was counted; 0 before the first. */
export function hitRate(hits: number, misses: number, coalesced: number): number {
  const total = hits + misses + coalesced;
  return total === 0 ? 0 : hits / total;
}
