import { ReplyError } from 'ioredis';
import type { CacheMetrics, CacheStatus, Logger, Redis } from '@actionedx/shared';
import { CircuitBreaker, type BreakerState, type CircuitBreakerOptions } from '../resilience/index.js';
import { defineCacheScripts, type CacheScripts } from './redis-scripts.js';

export type Attempt<T> = { outcome: 'ok'; value: T } | { outcome: 'error' | 'skipped' };

export interface RedisGuardOptions {
  /** When to stop calling Redis. Default: open after 5 failures in a row, try again after 1000 ms. */
  breaker?: Pick<CircuitBreakerOptions, 'failureThreshold' | 'cooldownMs'>;
  /** Quit the client in `close()`. Default false: the client belongs to whoever created it. */
  closeClient?: boolean;
}

/**
 * The cache's one way to call Redis: every command goes through a circuit breaker and never throws, so the
 * answer store and the flight lock on one client fail open together and share what they learn about it.
 */
export class RedisGuard {
  readonly redis: Redis & CacheScripts;
  private readonly breaker: CircuitBreaker;
  private closed = false;

  constructor(
    redis: Redis,
    private readonly deps: { metrics: CacheMetrics; logger: Logger },
    private readonly opts: RedisGuardOptions = {},
  ) {
    this.redis = defineCacheScripts(redis);
    this.breaker = new CircuitBreaker({
      ...opts.breaker,
      onStateChange: (state) => {
        deps.metrics.breakerOpen.set(state === 'open' ? 1 : 0);
        if (state === 'open') deps.logger.warn('cache circuit open: Redis is skipped, requests go to the model');
        else if (state === 'closed') deps.logger.info('cache circuit closed: Redis is used again');
      },
    });
  }

  breakerState(): BreakerState {
    return this.breaker.state();
  }

  status(): CacheStatus {
    const up = !this.closed && this.redis.status === 'ready' && this.breaker.state() !== 'open';
    return up ? 'connected' : 'disconnected';
  }

  /** Runs `op` unless the breaker is open or Redis is not connected; never throws. */
  async attempt<T>(op: (redis: Redis & CacheScripts) => Promise<T>): Promise<Attempt<T>> {
    // Status first, so a disconnected client does not use up the breaker's one trial call.
    if (this.closed || this.redis.status !== 'ready' || !this.breaker.allow()) return { outcome: 'skipped' };
    try {
      const value = await op(this.redis);
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.opts.closeClient) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
