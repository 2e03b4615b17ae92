import type { Redis } from 'ioredis';

/** Redis's eviction policy (`maxmemory-policy`), read from INFO (works where CONFIG is disabled, as on managed Redis). */
export async function evictionPolicy(redis: Redis): Promise<string> {
  const info = await redis.info('memory');
  const m = /^maxmemory_policy:(\S+)/m.exec(info);
  if (!m) throw new Error('the Redis INFO memory section has no maxmemory_policy');
  return m[1]!;
}

/**
 * A queue on a Redis that evicts keys loses jobs when memory runs short: BullMQ's keys carry no TTL, so any
 * `allkeys-*` policy (and, under pressure, others) can drop a waiting job or its lock without a trace.
 */
export class EvictingRedisError extends Error {
  constructor(readonly policy: string) {
    super(
      `the queue Redis evicts keys (maxmemory-policy ${policy}): jobs would be lost under memory pressure. ` +
        'Run it with --maxmemory-policy noeviction (a Redis of its own, not the cache Redis), or point QUEUE_REDIS_URL at one that does.',
    );
    this.name = 'EvictingRedisError';
  }
}

/** Rejects with `EvictingRedisError` unless the policy is `noeviction`. */
export async function assertNoEviction(redis: Redis): Promise<void> {
  const policy = await evictionPolicy(redis);
  if (policy !== 'noeviction') throw new EvictingRedisError(policy);
}
