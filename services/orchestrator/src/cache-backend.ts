import { createCacheMetrics, createRedisClient, type Logger } from '@actionedx/shared';
import type { Registry } from 'prom-client';
import { MemoryResponseCache, RedisResponseCache, type ResponseCache } from './cache/index.js';

export interface ResponseCacheConfig {
  /** Redis shared by every replica; without it the cache lives in this process's memory. */
  redisUrl?: string | undefined;
  registry: Registry;
  logger: Logger;
  /** Connection name, shown by Redis `CLIENT LIST`. */
  name: string;
}

/** The one place that picks the cache backend. */
export function createResponseCache(cfg: ResponseCacheConfig): ResponseCache {
  const metrics = createCacheMetrics(cfg.registry);
  const logger = cfg.logger.child({ component: 'cache' });
  const cache: ResponseCache = cfg.redisUrl
    ? new RedisResponseCache({ redis: createRedisClient({ url: cfg.redisUrl, name: cfg.name }), metrics, logger }, { closeClient: true })
    : new MemoryResponseCache({ metrics });
  cache.startGauges();
  return cache;
}
