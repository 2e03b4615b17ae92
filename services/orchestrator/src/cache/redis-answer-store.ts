import {
  AppError,
  TASK_TYPES,
  type CacheHealth,
  type CacheInvalidateRequest,
  type CacheInvalidateResult,
  type CacheMetrics,
  type CacheStats,
  type CacheStatus,
  type Logger,
  type Redis,
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
import type { CacheNamespace, InvalidationTarget } from './cache-namespace.js';
import type { RedisGuard } from './redis-guard.js';

export interface RedisAnswerStoreDeps {
  guard: RedisGuard;
  namespace: CacheNamespace;
  metrics: CacheMetrics;
  logger: Logger;
}

/** SCAN page sizes: big enough to be quick, small enough that no single call holds Redis up. */
const STATS_SCAN_COUNT = 1000;
const INVALIDATE_SCAN_COUNT = 500;

/** The answers on Redis, shared by every orchestrator replica, with cluster-wide hit/miss/coalesced counters. */
export class RedisAnswerStore implements AnswerStore {
  readonly backend = 'redis';
  readonly prefix: string;
  private gaugeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly deps: RedisAnswerStoreDeps) {
    this.prefix = deps.namespace.prefix;
  }

  async get(key: string, opts: GetOptions = {}): Promise<CacheEntry | null> {
    const { namespace, metrics, guard } = this.deps;
    namespace.assertAnswerKey(key);
    const started = performance.now();
    const record = opts.record === false ? '0' : '1';
    const attempt = await guard.attempt((r) => r.cacheGet(key, namespace.statsKey, record));
    const entry = attempt.outcome === 'ok' && typeof attempt.value === 'string' ? decodeEntry(attempt.value) : null;
    const result = attempt.outcome === 'ok' ? (entry ? 'hit' : 'miss') : attempt.outcome;
    // A miss is counted once the request knows how it was answered (`count`); re-checks are counted apart.
    if (opts.record === false) metrics.operations.inc({ operation: 'recheck', result });
    else if (result !== 'miss') metrics.operations.inc({ operation: 'get', result });
    metrics.lookupLatency.observe({ result }, (performance.now() - started) / 1000);
    return entry;
  }

  count(outcome: Exclude<LookupOutcome, 'hit'>): void {
    this.deps.metrics.operations.inc({ operation: 'get', result: outcome });
    const field = outcome === 'miss' ? 'misses' : 'coalesced';
    void this.deps.guard.attempt((r) => r.hincrby(this.deps.namespace.statsKey, field, 1));
  }

  async set(key: string, entry: CacheEntry, ttlSeconds: number): Promise<boolean> {
    this.deps.namespace.assertAnswerKey(key);
    checkPositiveInteger('ttlSeconds', ttlSeconds);
    const attempt = await this.deps.guard.attempt((r) => r.set(key, JSON.stringify(entry), 'EX', ttlSeconds));
    this.deps.metrics.operations.inc({ operation: 'set', result: attempt.outcome === 'ok' ? 'success' : attempt.outcome });
    return attempt.outcome === 'ok';
  }

  status(): CacheStatus {
    return this.closed ? 'disconnected' : this.deps.guard.status();
  }

  async stats(): Promise<CacheStats> {
    const { namespace, metrics } = this.deps;
    const attempt = await this.deps.guard.attempt(async (r) => {
      const [counters, info] = await Promise.all([r.hmget(namespace.statsKey, 'hits', 'misses', 'coalesced'), r.info('memory')]);
      return { counters, info, keysByTaskType: await this.countAnswers(r) };
    });
    if (attempt.outcome !== 'ok') {
      // Gauges keep their last figures: zeros would claim an empty cache, which nobody knows.
      return {
        status: 'disconnected',
        backend: 'redis',
        hits: 0,
        misses: 0,
        coalesced: 0,
        hit_rate: 0,
        total_keys: 0,
        keys_by_task_type: {},
        memory_used_bytes: null,
      };
    }
    const { counters, info, keysByTaskType } = attempt.value;
    const [hits, misses, coalesced] = counters.map((c) => Number(c ?? 0)) as [number, number, number];
    // The whole Redis server's memory: what an operator sizes and alerts on (a namespace has no figure of its own).
    const usedMemory = /^used_memory:(\d+)/m.exec(info)?.[1];
    const memoryUsedBytes = usedMemory === undefined ? null : Number(usedMemory);
    for (const [type, count] of Object.entries(keysByTaskType)) metrics.keys.set({ type }, count);
    if (memoryUsedBytes !== null) metrics.sizeBytes.set(memoryUsedBytes);
    return {
      status: 'connected',
      backend: 'redis',
      hits,
      misses,
      coalesced,
      hit_rate: hitRate(hits, misses, coalesced),
      total_keys: Object.values(keysByTaskType).reduce((a, b) => a + b, 0),
      keys_by_task_type: keysByTaskType,
      memory_used_bytes: memoryUsedBytes,
    };
  }

  async invalidate(req: CacheInvalidateRequest): Promise<CacheInvalidateResult> {
    const target = this.deps.namespace.invalidationTarget(req);
    const attempt = await this.deps.guard.attempt((r) => this.deleteMatching(r, target));
    if (attempt.outcome !== 'ok') {
      this.deps.metrics.operations.inc({ operation: 'invalidate', result: attempt.outcome });
      throw new AppError('cache_unavailable');
    }
    this.deps.metrics.operations.inc({ operation: 'invalidate', result: 'success' });
    this.deps.metrics.operations.inc({ operation: 'delete', result: 'success' }, attempt.value);
    return { pattern: target.pattern, deleted: attempt.value };
  }

  async health(): Promise<CacheHealth> {
    const breaker = this.deps.guard.breakerState();
    // Not in use (down, or skipped by the open breaker) is `disconnected`, as in stats: slow counts as down.
    if (this.status() === 'disconnected') return { status: 'disconnected', backend: 'redis', latency_ms: null, breaker };
    const started = performance.now();
    try {
      await this.deps.guard.redis.ping();
      const latencyMs = Math.round((performance.now() - started) * 100) / 100;
      return { status: 'healthy', backend: 'redis', latency_ms: latencyMs, breaker };
    } catch {
      return { status: 'unhealthy', backend: 'redis', latency_ms: null, breaker };
    }
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

  /** One pass over the namespace (not one per task type): a single SCAN of the keyspace, whatever its size. */
  private async countAnswers(r: Redis): Promise<Record<string, number>> {
    const counts: Record<string, number> = Object.fromEntries(TASK_TYPES.map((t) => [t, 0]));
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${this.prefix}:*`, 'COUNT', STATS_SCAN_COUNT);
      for (const key of keys) {
        const type = this.deps.namespace.taskTypeOf(key);
        if (type !== undefined) counts[type] = (counts[type] ?? 0) + 1;
      }
      cursor = next;
    } while (cursor !== '0');
    return counts;
  }

  private async deleteMatching(r: Redis, target: InvalidationTarget): Promise<number> {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', target.pattern, 'COUNT', INVALIDATE_SCAN_COUNT);
      const answers = keys.filter((k) => target.matches(k));
      if (answers.length > 0) deleted += await r.unlink(...answers);
      cursor = next;
    } while (cursor !== '0');
    return deleted;
  }
}
