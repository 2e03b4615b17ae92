import { LRUCache } from 'lru-cache';
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
import {
  checkPositiveInteger,
  decodeEntry,
  hitRate,
  type AnswerStore,
  type CacheEntry,
  type GetOptions,
  type LookupOutcome,
} from './answer-store.js';
import type { CacheNamespace } from './cache-namespace.js';

export interface MemoryAnswerStoreOptions {
  /** Most answers held. Default 10 000. */
  maxEntries?: number;
  /** Most bytes of answers held (UTF-8 size of keys and stored JSON). Default 64 MiB. */
  maxBytes?: number;
}

/**
 * The answers inside one process (embedded mode): an LRU bounded in entries and in bytes, with a TTL per
 * entry. Entries are kept as JSON, as in Redis, so a caller can never change a cached answer by mutating
 * what it got.
 */
export class MemoryAnswerStore implements AnswerStore {
  readonly backend = 'memory';
  readonly prefix: string;
  private readonly entries: LRUCache<string, string>;
  private readonly counters = { hits: 0, misses: 0, coalesced: 0 };
  private gaugeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly deps: { namespace: CacheNamespace; metrics: CacheMetrics },
    opts: MemoryAnswerStoreOptions = {},
  ) {
    this.prefix = deps.namespace.prefix;
    this.entries = new LRUCache<string, string>({
      max: opts.maxEntries ?? 10_000,
      maxSize: opts.maxBytes ?? 64 * 1024 * 1024,
      sizeCalculation: (value, key) => Buffer.byteLength(key) + Buffer.byteLength(value),
    });
  }

  async get(key: string, opts: GetOptions = {}): Promise<CacheEntry | null> {
    this.deps.namespace.assertAnswerKey(key);
    const { metrics } = this.deps;
    const started = performance.now();
    const raw = this.closed ? undefined : this.entries.get(key);
    const entry = raw === undefined ? null : decodeEntry(raw);
    const result = this.closed ? 'skipped' : entry ? 'hit' : 'miss';
    if (opts.record === false) metrics.operations.inc({ operation: 'recheck', result });
    else {
      if (entry) this.counters.hits += 1;
      // A miss is counted once the request knows how it was answered (`count`).
      if (result !== 'miss') metrics.operations.inc({ operation: 'get', result });
    }
    metrics.lookupLatency.observe({ result }, (performance.now() - started) / 1000);
    return entry;
  }

  count(outcome: Exclude<LookupOutcome, 'hit'>): void {
    this.deps.metrics.operations.inc({ operation: 'get', result: outcome });
    if (outcome === 'miss') this.counters.misses += 1;
    else this.counters.coalesced += 1;
  }

  async set(key: string, entry: CacheEntry, ttlSeconds: number): Promise<boolean> {
    this.deps.namespace.assertAnswerKey(key);
    checkPositiveInteger('ttlSeconds', ttlSeconds);
    const json = JSON.stringify(entry);
    // lru-cache refuses (silently) a value larger than the whole store: report it as not stored.
    const fits = Buffer.byteLength(key) + Buffer.byteLength(json) <= this.entries.maxSize;
    const stored = !this.closed && fits;
    if (stored) this.entries.set(key, json, { ttl: ttlSeconds * 1000 });
    this.deps.metrics.operations.inc({ operation: 'set', result: stored ? 'success' : 'skipped' });
    return stored;
  }

  status(): CacheStatus {
    return 'memory';
  }

  async stats(): Promise<CacheStats> {
    const keysByTaskType: Record<string, number> = Object.fromEntries(TASK_TYPES.map((t) => [t, 0]));
    this.entries.purgeStale();
    for (const key of this.entries.keys()) {
      const type = this.deps.namespace.taskTypeOf(key);
      if (type !== undefined) keysByTaskType[type] = (keysByTaskType[type] ?? 0) + 1;
    }
    for (const [type, count] of Object.entries(keysByTaskType)) this.deps.metrics.keys.set({ type }, count);
    this.deps.metrics.sizeBytes.set(this.entries.calculatedSize);
    const { hits, misses, coalesced } = this.counters;
    return {
      status: 'memory',
      backend: 'memory',
      hits,
      misses,
      coalesced,
      hit_rate: hitRate(hits, misses, coalesced),
      total_keys: Object.values(keysByTaskType).reduce((a, b) => a + b, 0),
      keys_by_task_type: keysByTaskType,
      memory_used_bytes: this.entries.calculatedSize,
    };
  }

  async invalidate(req: CacheInvalidateRequest): Promise<CacheInvalidateResult> {
    const target = this.deps.namespace.invalidationTarget(req);
    if (this.closed) throw new AppError('cache_unavailable');
    let deleted = 0;
    for (const key of [...this.entries.keys()]) if (target.matches(key) && this.entries.delete(key)) deleted += 1;
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
  }
}
