import { randomUUID } from 'node:crypto';
import { ReplyError, type ChainableCommander } from 'ioredis';
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
import { CacheNamespace, type InvalidationTarget } from './cache-namespace.js';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js';
import { FlightSignals, awaitFlight, type FlightState } from './flight-signals.js';
import { FlightSubscriber } from './flight-subscriber.js';
import { EXTEND_LOCK, LOOKUP, RELEASE_LOCK } from './lua-script.js';
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

export interface RedisResponseCacheDeps {
  /** A connected client from `createRedisClient` (no offline queue, short command timeout). */
  redis: Redis;
  metrics: CacheMetrics;
  logger: Logger;
}

export interface RedisResponseCacheOptions {
  /** Key namespace. Default `ai_cache`. */
  prefix?: string;
  /** When to stop calling Redis. Default: open after 5 failures in a row, try again after 1000 ms. */
  breaker?: Pick<CircuitBreakerOptions, 'failureThreshold' | 'cooldownMs'>;
  /** How often a flight waiter reads the state in case a notification was lost. Default 50 ms. */
  flightPollMs?: number;
  /** Default timeout of `waitForFlight`. Default 30 000 ms. */
  flightWaitTimeoutMs?: number;
  /** Quit the client in `close()`. Default false: the client belongs to whoever created it. */
  closeClient?: boolean;
}

type Attempt<T> = { outcome: 'ok'; value: T } | { outcome: 'error' | 'skipped' };

/** SCAN page sizes: big enough to be quick, small enough that no single call holds Redis up. */
const STATS_SCAN_COUNT = 1000;
const INVALIDATE_SCAN_COUNT = 500;

/**
 * The response cache on Redis, shared by every orchestrator replica: answers, cluster-wide hit/miss counters,
 * and single-flight locks. Every call goes through a circuit breaker and fails open.
 */
export class RedisResponseCache implements ResponseCache {
  readonly backend = 'redis';
  readonly prefix: string;
  private readonly namespace: CacheNamespace;
  private readonly breaker: CircuitBreaker;
  private readonly signals = new FlightSignals();
  private readonly subscriber: FlightSubscriber;
  private readonly flightPollMs: number;
  private readonly flightWaitTimeoutMs: number;
  private gaugeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly deps: RedisResponseCacheDeps,
    private readonly opts: RedisResponseCacheOptions = {},
  ) {
    this.namespace = new CacheNamespace(opts.prefix);
    this.prefix = this.namespace.prefix;
    this.flightPollMs = opts.flightPollMs ?? 50;
    this.flightWaitTimeoutMs = opts.flightWaitTimeoutMs ?? 30_000;
    this.breaker = new CircuitBreaker({
      ...opts.breaker,
      onStateChange: (state) => {
        deps.metrics.breakerOpen.set(state === 'open' ? 1 : 0);
        if (state === 'open') deps.logger.warn('cache circuit open: Redis is skipped, requests go to the model');
        else if (state === 'closed') deps.logger.info('cache circuit closed: Redis is used again');
      },
    });
    this.subscriber = new FlightSubscriber(deps.redis, this.namespace, this.signals, deps.logger);
  }

  async lookup(key: string, opts: LookupOptions = {}): Promise<CacheEntry | null> {
    this.namespace.assertAnswerKey(key);
    const started = performance.now();
    const record = opts.record === false ? '0' : '1';
    const attempt = await this.attempt((r) => LOOKUP.run(r, [key, this.namespace.statsKey], [record]));
    const entry = attempt.outcome === 'ok' && typeof attempt.value === 'string' ? decodeEntry(attempt.value) : null;
    const result = attempt.outcome === 'ok' ? (entry ? 'hit' : 'miss') : attempt.outcome;
    // The leader's re-check under its lease is the same request: counted apart, so hit rates stay true.
    this.deps.metrics.operations.inc({ operation: opts.record === false ? 'recheck' : 'get', result });
    this.deps.metrics.lookupLatency.observe({ result }, (performance.now() - started) / 1000);
    return entry;
  }

  async store(key: string, entry: CacheEntry, ttlSeconds: number): Promise<boolean> {
    this.namespace.assertAnswerKey(key);
    checkPositiveInteger('ttlSeconds', ttlSeconds);
    const attempt = await this.attempt((r) => r.set(key, JSON.stringify(entry), 'EX', ttlSeconds));
    this.deps.metrics.operations.inc({ operation: 'set', result: attempt.outcome === 'ok' ? 'success' : attempt.outcome });
    return attempt.outcome === 'ok';
  }

  async acquireFlight(key: string, leaseMs: number): Promise<FlightAttempt> {
    const lockKey = this.namespace.lockKey(key);
    checkPositiveInteger('leaseMs', leaseMs);
    const token = randomUUID();
    const attempt = await this.attempt((r) => r.set(lockKey, token, 'PX', leaseMs, 'NX'));
    if (attempt.outcome !== 'ok') return 'unavailable';
    return attempt.value === 'OK' ? this.lease(key, lockKey, token) : 'busy';
  }

  waitForFlight(key: string, opts: WaitForFlightOptions = {}): Promise<CacheEntry | null> {
    const lockKey = this.namespace.lockKey(key);
    if (!this.closed) this.subscriber.ensureStarted();
    return awaitFlight(this.signals.watch(key), () => this.readFlight(key, lockKey), {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? this.flightWaitTimeoutMs,
      pollMs: this.flightPollMs,
    });
  }

  status(): CacheStatus {
    const up = !this.closed && this.deps.redis.status === 'ready' && this.breaker.state() !== 'open';
    return up ? 'connected' : 'disconnected';
  }

  async stats(): Promise<CacheStats> {
    const attempt = await this.attempt(async (r) => {
      const [counters, info] = await Promise.all([r.hmget(this.namespace.statsKey, 'hits', 'misses'), r.info('memory')]);
      return { counters, info, keysByTaskType: await this.countAnswers(r) };
    });
    if (attempt.outcome !== 'ok') {
      // Gauges keep their last figures: zeros would claim an empty cache, which nobody knows.
      return {
        status: 'disconnected',
        backend: 'redis',
        hits: 0,
        misses: 0,
        hit_rate: 0,
        total_keys: 0,
        keys_by_task_type: {},
        memory_used_bytes: null,
      };
    }
    const { counters, info, keysByTaskType } = attempt.value;
    const hits = Number(counters[0] ?? 0);
    const misses = Number(counters[1] ?? 0);
    // The whole Redis server's memory: what an operator sizes and alerts on (a namespace has no figure of its own).
    const usedMemory = /^used_memory:(\d+)/m.exec(info)?.[1];
    const memoryUsedBytes = usedMemory === undefined ? null : Number(usedMemory);
    for (const [type, count] of Object.entries(keysByTaskType)) this.deps.metrics.keys.set({ type }, count);
    if (memoryUsedBytes !== null) this.deps.metrics.sizeBytes.set(memoryUsedBytes);
    return {
      status: 'connected',
      backend: 'redis',
      hits,
      misses,
      hit_rate: hits + misses === 0 ? 0 : hits / (hits + misses),
      total_keys: Object.values(keysByTaskType).reduce((a, b) => a + b, 0),
      keys_by_task_type: keysByTaskType,
      memory_used_bytes: memoryUsedBytes,
    };
  }

  async invalidate(req: CacheInvalidateRequest): Promise<CacheInvalidateResult> {
    const target = this.namespace.invalidationTarget(req);
    const attempt = await this.attempt((r) => this.deleteMatching(r, target));
    if (attempt.outcome !== 'ok') {
      this.deps.metrics.operations.inc({ operation: 'invalidate', result: attempt.outcome });
      throw new AppError('cache_unavailable');
    }
    this.deps.metrics.operations.inc({ operation: 'invalidate', result: 'success' });
    this.deps.metrics.operations.inc({ operation: 'delete', result: 'success' }, attempt.value);
    return { pattern: target.pattern, deleted: attempt.value };
  }

  async health(): Promise<CacheHealth> {
    const breaker = this.breaker.state();
    // Not in use (down, or skipped by the open breaker) is `disconnected`, as in stats: slow counts as down.
    if (this.status() === 'disconnected') return { status: 'disconnected', backend: 'redis', latency_ms: null, breaker };
    const started = performance.now();
    try {
      await this.deps.redis.ping();
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
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.gaugeTimer);
    this.signals.notifyAll();
    this.subscriber.close();
    if (this.opts.closeClient) await this.deps.redis.quit().catch(() => this.deps.redis.disconnect());
  }

  private lease(key: string, lockKey: string, token: string): FlightLease {
    let released = false;
    return {
      key,
      release: async () => {
        if (released) return;
        released = true;
        await this.attempt((r) => RELEASE_LOCK.run(r, [lockKey], [token, this.namespace.flightChannel(key)]));
        // Waiters in this process need not wait for the round trip through pub/sub.
        this.signals.notify(key);
      },
      extend: async (leaseMs) => {
        checkPositiveInteger('leaseMs', leaseMs);
        if (released) return false;
        const attempt = await this.attempt((r) => EXTEND_LOCK.run(r, [lockKey], [token, leaseMs]));
        return attempt.outcome === 'ok' && attempt.value === 1;
      },
    };
  }

  /**
   * The lock is read before the entry: a leader stores before it releases, so "no lock, then no entry"
   * can only mean it gave up without storing.
   */
  private async readFlight(key: string, lockKey: string): Promise<FlightState | null> {
    const attempt = await this.attempt((r) => execPipeline(r.pipeline().exists(lockKey).get(key)));
    if (attempt.outcome !== 'ok') return null;
    const [locked, raw] = attempt.value;
    return { leaderActive: locked === 1, entry: typeof raw === 'string' ? decodeEntry(raw) : null };
  }

  /** One pass over the namespace (not one per task type): a single SCAN of the keyspace, whatever its size. */
  private async countAnswers(r: Redis): Promise<Record<string, number>> {
    const counts: Record<string, number> = Object.fromEntries(TASK_TYPES.map((t) => [t, 0]));
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${this.prefix}:*`, 'COUNT', STATS_SCAN_COUNT);
      for (const key of keys) {
        const type = this.namespace.taskTypeOf(key);
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

  /** Runs `op` unless the breaker is open or Redis is not connected; never throws. */
  private async attempt<T>(op: (redis: Redis) => Promise<T>): Promise<Attempt<T>> {
    // Status first, so a disconnected client does not use up the breaker's one trial call.
    if (this.closed || this.deps.redis.status !== 'ready' || !this.breaker.allow()) return { outcome: 'skipped' };
    try {
      const value = await op(this.deps.redis);
      this.breaker.success();
      return { outcome: 'ok', value };
    } catch (err) {
      if (err instanceof ReplyError) {
        // Redis answered, so it is up: a bug or a full memory, not a reason to stop calling it.
        this.breaker.success();
        this.deps.logger.warn({ err }, 'cache command refused by Redis');
      } else {
        this.breaker.failure();
        this.deps.logger.debug({ err }, 'cache command failed');
      }
      return { outcome: 'error' };
    }
  }
}

/** A pipeline's replies, or its first error thrown (ioredis reports them per command). */
async function execPipeline(pipeline: ChainableCommander): Promise<unknown[]> {
  const replies = await pipeline.exec();
  if (replies === null) throw new Error('pipeline discarded');
  return replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
