import { createCacheMetrics, createRedisClient, type Logger } from '@actionedx/shared';
import type { Registry } from 'prom-client';
import { AnswerFlights, type AnswerFlightsOptions } from './answer-flights.js';
import type { AnswerStore } from './answer-store.js';
import { CacheNamespace } from './cache-namespace.js';
import type { FlightLock } from './flight-lock.js';
import { MemoryAnswerStore } from './memory-answer-store.js';
import { MemoryFlightLock } from './memory-flight-lock.js';
import { RedisAnswerStore } from './redis-answer-store.js';
import { RedisFlightLock } from './redis-flight-lock.js';
import { RedisGuard } from './redis-guard.js';

export interface CacheConfig {
  /** Redis shared by every replica; without it the cache lives in this process's memory. */
  redisUrl?: string | undefined;
  registry: Registry;
  logger: Logger;
  /** Connection name, shown by Redis `CLIENT LIST`. */
  name: string;
  flights?: AnswerFlightsOptions;
}

/** The answer store, its flight lock and the single flight over both, on one backend. */
export interface Cache {
  store: AnswerStore;
  lock: FlightLock;
  flights: AnswerFlights;
  close(): Promise<void>;
}

/** The one place that picks the cache backend: Redis when a URL is given, else memory. */
export function createCache(cfg: CacheConfig): Cache {
  const metrics = createCacheMetrics(cfg.registry);
  const logger = cfg.logger.child({ component: 'cache' });
  const namespace = new CacheNamespace();
  let store: AnswerStore;
  let lock: FlightLock;
  let guard: RedisGuard | undefined;
  if (cfg.redisUrl) {
    guard = new RedisGuard(createRedisClient({ url: cfg.redisUrl, name: cfg.name }), { metrics, logger }, { closeClient: true });
    store = new RedisAnswerStore({ guard, namespace, metrics, logger });
    lock = new RedisFlightLock({ guard, namespace, logger });
  } else {
    store = new MemoryAnswerStore({ namespace, metrics });
    lock = new MemoryFlightLock({ namespace });
  }
  store.startGauges();
  return {
    store,
    lock,
    flights: new AnswerFlights(store, lock, { ...cfg.flights, metrics }),
    async close() {
      await lock.close();
      await store.close();
      await guard?.close();
    },
  };
}
