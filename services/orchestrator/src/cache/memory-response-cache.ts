import { randomUUID } from 'node:crypto';
import {
  AppError,
  TASK_TYPES,
  type CacheHealth,
  type CacheInvalidateRequest,
  type CacheInvalidateResult,
  type CacheMetrics,
  type CacheStats,
  type CacheStatus,
} from '@actionedx/shared';
import { CacheNamespace } from './cache-namespace.js';
import { FlightSignals, awaitFlight } from './flight-signals.js';
import { LruStore } from './lru-store.js';
import {
  checkPositiveInteger,
  decodeEntry,
  type CacheEntry,
  type FlightAttempt,
  type FlightLease,
  type LookupOptions,
  type ResponseCache,
  type WaitForFlightOptions,
} from './response-cache.js';

export interface MemoryResponseCacheDeps {
  metrics: CacheMetrics;
}

export interface MemoryResponseCacheOptions {
  /** Key namespace. Default `ai_cache`. */
  prefix?: string;
  /** Most answers held. Default 10 000. */
  maxEntries?: number;
  /** Most bytes of answers held. Default 64 MiB. */
  maxBytes?: number;
  /** How often a flight waiter re-reads the state (to notice an expired lease). Default 50 ms. */
  flightPollMs?: number;
  /** Default timeout of `waitForFlight`. Default 30 000 ms. */
  flightWaitTimeoutMs?: number;
}

interface Lock {
  token: string;
  expiresAt: number;
}

/**
 * The response cache inside one process (embedded mode): a bounded LRU with TTLs, counters and single
 * flight for this process only. Entries are kept as JSON, as in Redis, so a caller can never change a
 * cached answer by mutating what it got.
 */
export class MemoryResponseCache implements ResponseCache {
  readonly backend = 'memory';
  readonly prefix: string;
  private readonly namespace: CacheNamespace;
  private readonly entries: LruStore;
  private readonly locks = new Map<string, Lock>();
  private readonly signals = new FlightSignals();
  private readonly flightPollMs: number;
  private readonly flightWaitTimeoutMs: number;
  private hits = 0;
  private misses = 0;
  private gaugeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly deps: MemoryResponseCacheDeps,
    opts: MemoryResponseCacheOptions = {},
  ) {
    this.namespace = new CacheNamespace(opts.prefix);
    this.prefix = this.namespace.prefix;
    this.entries = new LruStore({ maxEntries: opts.maxEntries ?? 10_000, maxBytes: opts.maxBytes ?? 64 * 1024 * 1024 });
    this.flightPollMs = opts.flightPollMs ?? 50;
    this.flightWaitTimeoutMs = opts.flightWaitTimeoutMs ?? 30_000;
  }

  async lookup(key: string, opts: LookupOptions = {}): Promise<CacheEntry | null> {
    this.namespace.assertAnswerKey(key);
    const started = performance.now();
    const entry = this.closed ? null : this.read(key);
    if (!this.closed && opts.record !== false) {
      if (entry) this.hits += 1;
      else this.misses += 1;
    }
    const result = this.closed ? 'skipped' : entry ? 'hit' : 'miss';
    // The leader's re-check under its lease is the same request: counted apart, so hit rates stay true.
    this.deps.metrics.operations.inc({ operation: opts.record === false ? 'recheck' : 'get', result });
    this.deps.metrics.lookupLatency.observe({ result }, (performance.now() - started) / 1000);
    return entry;
  }

  async store(key: string, entry: CacheEntry, ttlSeconds: number): Promise<boolean> {
    this.namespace.assertAnswerKey(key);
    checkPositiveInteger('ttlSeconds', ttlSeconds);
    const stored = !this.closed && this.entries.set(key, JSON.stringify(entry), ttlSeconds * 1000);
    this.deps.metrics.operations.inc({ operation: 'set', result: stored ? 'success' : 'skipped' });
    return stored;
  }

  async acquireFlight(key: string, leaseMs: number): Promise<FlightAttempt> {
    this.namespace.assertAnswerKey(key);
    checkPositiveInteger('leaseMs', leaseMs);
    if (this.closed) return 'unavailable';
    if (this.lockHeld(key)) return 'busy';
    const token = randomUUID();
    this.locks.set(key, { token, expiresAt: Date.now() + leaseMs });
    return this.lease(key, token);
  }

  waitForFlight(key: string, opts: WaitForFlightOptions = {}): Promise<CacheEntry | null> {
    this.namespace.assertAnswerKey(key);
    const read = async () => (this.closed ? null : { entry: this.read(key), leaderActive: this.lockHeld(key) });
    return awaitFlight(this.signals.watch(key), read, {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? this.flightWaitTimeoutMs,
      pollMs: this.flightPollMs,
    });
  }

  status(): CacheStatus {
    return 'memory';
  }

  async stats(): Promise<CacheStats> {
    const keysByTaskType: Record<string, number> = Object.fromEntries(TASK_TYPES.map((t) => [t, 0]));
    for (const key of this.entries.keys()) {
      const type = this.namespace.taskTypeOf(key);
      if (type !== undefined) keysByTaskType[type] = (keysByTaskType[type] ?? 0) + 1;
    }
    for (const [type, count] of Object.entries(keysByTaskType)) this.deps.metrics.keys.set({ type }, count);
    this.deps.metrics.sizeBytes.set(this.entries.bytes);
    const total = this.hits + this.misses;
    return {
      status: 'memory',
      backend: 'memory',
      hits: this.hits,
      misses: this.misses,
      hit_rate: total === 0 ? 0 : this.hits / total,
      total_keys: Object.values(keysByTaskType).reduce((a, b) => a + b, 0),
      keys_by_task_type: keysByTaskType,
      memory_used_bytes: this.entries.bytes,
    };
  }

  async invalidate(req: CacheInvalidateRequest): Promise<CacheInvalidateResult> {
    const target = this.namespace.invalidationTarget(req);
    if (this.closed) throw new AppError('cache_unavailable');
    let deleted = 0;
    for (const key of this.entries.keys()) if (target.matches(key) && this.entries.delete(key)) deleted += 1;
    this.deps.metrics.operations.inc({ operation: 'invalidate', result: 'success' });
    this.deps.metrics.operations.inc({ operation: 'delete', result: 'success' }, deleted);
    return { pattern: target.pattern, deleted };
  }

  async health(): Promise<CacheHealth> {
    return { status: 'memory', backend: 'memory', latency_ms: 0, breaker: 'closed' };
  }

  startGauges(intervalMs = 15_000): void {
    if (this.gaugeTimer !== undefined || this.closed) return;
    void this.stats();
    this.gaugeTimer = setInterval(() => void this.stats(), intervalMs);
    this.gaugeTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.gaugeTimer);
    this.signals.notifyAll();
  }

  private read(key: string): CacheEntry | null {
    const raw = this.entries.get(key);
    return raw === undefined ? null : decodeEntry(raw);
  }

  private lockHeld(key: string): boolean {
    const lock = this.locks.get(key);
    if (lock && lock.expiresAt <= Date.now()) this.locks.delete(key);
    return this.locks.has(key);
  }

  private lease(key: string, token: string): FlightLease {
    const owned = () => this.lockHeld(key) && this.locks.get(key)?.token === token;
    return {
      key,
      release: async () => {
        if (!owned()) return;
        this.locks.delete(key);
        this.signals.notify(key);
      },
      extend: async (leaseMs) => {
        checkPositiveInteger('leaseMs', leaseMs);
        if (!owned()) return false;
        this.locks.set(key, { token, expiresAt: Date.now() + leaseMs });
        return true;
      },
    };
  }
}
