export { cacheKey, CACHE_KEY_VERSION, DEFAULT_CACHE_PREFIX, type CacheKeyParts } from './cache-key.js';
export { CacheNamespace } from './cache-namespace.js';
export { CacheEntrySchema, type AnswerStore, type CacheEntry, type GetOptions, type LookupOutcome } from './answer-store.js';
export type { FlightAttempt, FlightLease, FlightLock, WaitOptions, WaitOutcome } from './flight-lock.js';
export {
  AnswerFlights,
  type AnswerFlightsOptions,
  type AnswerSource,
  type Computed,
  type FlightReservation,
  type FlightResult,
  type FollowOptions,
  type GetOrComputeOptions,
  type Lookup,
} from './answer-flights.js';
export { RedisGuard, type RedisGuardOptions } from './redis-guard.js';
export { RedisAnswerStore } from './redis-answer-store.js';
export { MemoryAnswerStore, type MemoryAnswerStoreOptions } from './memory-answer-store.js';
export { RedisFlightLock, type RedisFlightLockOptions } from './redis-flight-lock.js';
export { MemoryFlightLock, type MemoryFlightLockOptions } from './memory-flight-lock.js';
export { createCache, type Cache, type CacheConfig } from './create-cache.js';
export { answerAdminRequest, registerCacheAdmin } from './admin.js';
