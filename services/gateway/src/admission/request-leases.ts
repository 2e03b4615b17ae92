import type { Redis } from '@actionedx/shared';
import type { RateLimiterRes } from 'rate-limiter-flexible';

/** One counter as admission reads it: its points in the current window, and the milliseconds left in that window. */
export type Count = Pick<RateLimiterRes, 'consumedPoints' | 'msBeforeNext'>;

/** What admitting one call reads: the requests counter after taking this call's point, tokens and spend so far. */
export interface CounterReading {
  requests: Count;
  /** Null while the caller has no tokens counted in this minute. */
  tokens: Count | null;
  /** Null while the caller has spent nothing today. */
  spend: Count | null;
}

/** How long a replica spends a lease on its own before it asks the shared counters again. */
export const LEASE_MS = 1_000;
/** A lease is this share of the caller's requests per minute, at least 1 and at most `LEASE_BLOCK_MAX`. */
const LEASE_BLOCK_SHARE = 0.1;
const LEASE_BLOCK_MAX = 100;
/**
 * Callers with a lease at once in one replica: ~0.3 KB each, so ~6 MB at most. Past it, a caller's calls take
 * one point each from Redis, as without leases (nothing is held for them).
 */
export const MAX_LEASES = 20_000;
/** Unused points are not given back this close to their window's end: the counter may be a new window's by then. */
const GIVE_BACK_MARGIN_MS = 250;
/** Unused points of this many leases given back in one script. */
const GIVE_BACK_BATCH = 500;

/**
 * Take a block of the requests counter, read tokens and spend, in one round trip, on the keys rate-limiter-flexible
 * uses (`<prefix>:<key>`, an integer with an expiry) so that its `penalty` charges the same counters.
 *
 * KEYS: requests, tokens, spend. ARGV: window (s), points wanted, quota, unused points of this replica's last lease
 * to give back first. The counter is opened as the library's increment script opens it (`SET NX EX`, the expiry
 * restored if it was lost). The block granted is what is wanted, capped by what is left of the quota, and at
 * least 1: a call over the limit still takes its point (and is refused), as without leases. Given-back points go
 * back only to a counter that still exists (a window that ended took them with it). Its keys live on one Redis.
 */
const ADMISSION_LEASE = {
  numberOfKeys: 3,
  lua: `
local giveBack = tonumber(ARGV[4])
if giveBack > 0 and redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECRBY', KEYS[1], giveBack) end
redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
local before = tonumber(redis.call('GET', KEYS[1]))
local grant = math.max(1, math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - before))
local consumed = redis.call('INCRBY', KEYS[1], grant)
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = 1000 * ARGV[1]
end
return {consumed, ttl, grant, redis.call('GET', KEYS[2]), redis.call('PTTL', KEYS[2]), redis.call('GET', KEYS[3])}
`,
} as const;

/** Unused points of expired leases given back: KEYS are requests counters, ARGV the points of each. */
const ADMISSION_GIVE_BACK = {
  lua: `
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then redis.call('DECRBY', key, ARGV[i]) end
end
return #KEYS
`,
} as const;

type LeaseReply = [number, number, number, string | null, number, string | null];
type RedisWithLeases = Redis & {
  admissionLease(requests: string, tokens: string, spend: string, windowS: number, want: number, quota: number, giveBack: number): Promise<LeaseReply>;
  admissionGiveBack(numberOfKeys: number, ...keysThenPoints: Array<string | number>): Promise<number>;
};

const withLeaseScripts = (redis: Redis): RedisWithLeases => {
  if (!('admissionLease' in redis)) redis.defineCommand('admissionLease', ADMISSION_LEASE);
  if (!('admissionGiveBack' in redis)) redis.defineCommand('admissionGiveBack', ADMISSION_GIVE_BACK);
  return redis as RedisWithLeases;
};

/** A block of one caller's requests counter held by this replica, with the tokens and spend read with it. */
interface Lease {
  dayKey: string;
  /** When this replica stops spending it on its own (at most `LEASE_MS`, never past its window). */
  expiresAt: number;
  /** When the requests counter's window ends (its `PTTL` at the grant). */
  windowEndsAt: number;
  /** The requests counter right after the grant. */
  consumed: number;
  granted: number;
  used: number;
  tokens: number | null;
  tokensEndsAt: number;
  spend: number | null;
  /** Charged through this replica since the lease was read (the shared counters have them too). */
  localTokens: number;
  localMicros: number;
}

interface Entry {
  lease: Lease | undefined;
  /** The round trip under way for this caller: calls that arrive meanwhile wait for it instead of sending their own. */
  pending: Promise<void> | undefined;
  waiting: number;
}

export interface LeaseKeys {
  requests(key: string): string;
  tokens(key: string): string;
  spend(dayKey: string): string;
}

export interface RequestLeasesDeps {
  now: () => number;
  windowS: number;
  /** A round trip to the shared counters: `taken` (a lease) or `returned` (unused points given back, per lease). */
  onTrip(event: 'taken' | 'returned', leases: number): void;
  onGiveBackError(err: unknown): void;
}

/**
 * Requests per minute taken from the shared counters in blocks instead of one call at a time: a replica leases a
 * tenth of a caller's quota (at most 100 points, at least 1) with one script, spends it on its own for up to
 * `LEASE_MS`, then gives back what it did not use when it leases again or when the lease has lapsed (a sweep
 * every `LEASE_MS`, and on close). A busy caller costs one round trip per block instead of one per call; a caller
 * who calls once a second or less costs one per call, as before.
 *
 * What it keeps exact and what it does not:
 * - A quota is never exceeded: every point spent was granted, and grants stop at the quota. A point given back
 *   just as its window ends may land in the next window (`GIVE_BACK_MARGIN_MS` makes that rare): then that window
 *   admits at most one block more.
 * - A caller may be refused while another replica still holds unused points for it, until that lease lapses (at
 *   most `LEASE_MS`, then its points are given back): the caller gets less for a second, never more.
 * - A refused caller is refused from the lease until it lapses (one round trip per second per replica, not one
 *   per refused call).
 * - Tokens and spend are read with the lease: charges made through other replicas are seen at the next lease
 *   (within `LEASE_MS`); this replica's own charges are added at once.
 * - The RateLimit headers count this replica's calls exactly and other replicas' as of the lease.
 */
export class RequestLeases {
  private readonly entries = new Map<string, Entry>();
  private readonly redis: RedisWithLeases;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    redis: Redis,
    private readonly keys: LeaseKeys,
    private readonly deps: RequestLeasesDeps,
  ) {
    this.redis = withLeaseScripts(redis);
    this.sweeper = setInterval(() => void this.sweep(), LEASE_MS).unref();
  }

  /** Callers with a lease (or a round trip under way) in this replica. */
  get size(): number {
    return this.entries.size;
  }

  /** Take one point of `key`'s requests counter (from the lease, or with a round trip) and read tokens and spend. */
  async take(key: string, dayKey: string, quota: number): Promise<CounterReading> {
    let entry = this.entries.get(key);
    const kept = entry !== undefined || this.entries.size < MAX_LEASES;
    if (entry === undefined) {
      entry = { lease: undefined, pending: undefined, waiting: 0 };
      if (kept) this.entries.set(key, entry);
    }
    for (;;) {
      const now = this.deps.now();
      const lease = entry.lease;
      if (lease !== undefined && now < lease.expiresAt && lease.dayKey === dayKey) {
        if (lease.used < lease.granted) {
          lease.used += 1;
          return this.readingOf(lease, lease.consumed - lease.granted + lease.used, now);
        }
        if (lease.consumed > quota) return this.readingOf(lease, lease.consumed, now);
      }
      if (entry.pending !== undefined) {
        entry.waiting += 1;
        try {
          await entry.pending;
        } finally {
          entry.waiting -= 1;
        }
        continue;
      }
      // Calls still waiting for this caller get their points in the same block.
      const want = kept ? Math.max(blockOf(quota), entry.waiting + 1) : 1;
      const current = entry;
      entry.pending = this.lease(current, key, dayKey, quota, want, now).finally(() => {
        current.pending = undefined;
      });
      await entry.pending;
    }
  }

  /** An answer's tokens and micro-dollars, charged through this replica: its lease counts them at once. */
  noteCharge(key: string, dayKey: string, tokens: number, micros: number): void {
    const lease = this.entries.get(key)?.lease;
    if (lease === undefined || lease.dayKey !== dayKey) return;
    lease.localTokens += tokens;
    lease.localMicros += micros;
  }

  /** Forget the leases that have lapsed and give back their unused points (all of them with `everything`). */
  async sweep(everything = false): Promise<void> {
    const now = this.deps.now();
    const back: Array<[string, number]> = [];
    for (const [key, entry] of this.entries) {
      if (entry.pending !== undefined || entry.waiting > 0) continue;
      const lease = entry.lease;
      if (!everything && lease !== undefined && now < lease.expiresAt) continue;
      this.entries.delete(key);
      const unused = lease === undefined ? 0 : unusedOf(lease, now);
      if (unused > 0) back.push([this.keys.requests(key), unused]);
    }
    for (let i = 0; i < back.length; i += GIVE_BACK_BATCH) {
      const batch = back.slice(i, i + GIVE_BACK_BATCH);
      try {
        await this.redis.admissionGiveBack(batch.length, ...batch.map(([k]) => k), ...batch.map(([, n]) => n));
        this.deps.onTrip('returned', batch.length);
      } catch (err) {
        this.deps.onGiveBackError(err);
      }
    }
  }

  /** Stop the sweep and give back every unused point (a replica that stops leaves its callers their quota). */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.sweep(true);
  }

  /** What a call reads from a lease: `consumed` requests, the tokens and spend read with it plus this replica's charges. */
  private readingOf(lease: Lease, consumed: number, now: number): CounterReading {
    const tokens = lease.tokens === null && lease.localTokens === 0 ? null : (lease.tokens ?? 0) + lease.localTokens;
    const spend = lease.spend === null && lease.localMicros === 0 ? null : (lease.spend ?? 0) + lease.localMicros;
    // Tokens counted only here so far: their window opened with the first charge, within this lease.
    const tokensLeftMs = lease.tokens === null ? this.deps.windowS * 1000 : Math.max(0, lease.tokensEndsAt - now);
    return {
      requests: { consumedPoints: consumed, msBeforeNext: Math.max(0, lease.windowEndsAt - now) },
      tokens: tokens === null ? null : { consumedPoints: tokens, msBeforeNext: tokensLeftMs },
      spend: spend === null ? null : { consumedPoints: spend, msBeforeNext: 0 },
    };
  }

  private async lease(entry: Entry, key: string, dayKey: string, quota: number, want: number, now: number): Promise<void> {
    const giveBack = entry.lease === undefined ? 0 : unusedOf(entry.lease, now);
    // Forgotten before the trip: if it fails, its points must not be given back twice.
    entry.lease = undefined;
    const [consumed, ttl, granted, tokens, tokensTtl, spend] = await this.redis.admissionLease(
      this.keys.requests(key),
      this.keys.tokens(key),
      this.keys.spend(dayKey),
      this.deps.windowS,
      want,
      quota,
      giveBack,
    );
    this.deps.onTrip('taken', 1);
    const at = this.deps.now();
    entry.lease = {
      dayKey,
      expiresAt: at + Math.min(LEASE_MS, ttl),
      windowEndsAt: at + ttl,
      consumed,
      granted,
      used: 0,
      tokens: tokens === null ? null : Number(tokens),
      tokensEndsAt: at + Math.max(0, tokensTtl),
      spend: spend === null ? null : Number(spend),
      localTokens: 0,
      localMicros: 0,
    };
  }
}

const blockOf = (quota: number): number => Math.max(1, Math.min(LEASE_BLOCK_MAX, Math.floor(quota * LEASE_BLOCK_SHARE)));

/** Points granted and not spent, if they can still go back to the window they came from. */
const unusedOf = (lease: Lease, now: number): number =>
  now < lease.windowEndsAt - GIVE_BACK_MARGIN_MS ? lease.granted - lease.used : 0;
