export { cacheKey, CACHE_KEY_VERSION, DEFAULT_CACHE_PREFIX, type CacheKeyParts } from './cache-key.js';
export { sharingScopeFor, resolveSharing, DEFAULT_SHARING, type Sharing, type SharingScope } from './sharing.js';
export { resolveTtls, DEFAULT_TTLS } from './ttl.js';
export { CircuitBreaker, type BreakerState, type CircuitBreakerOptions } from './circuit-breaker.js';
export {
  CacheEntrySchema,
  type CacheEntry,
  type FlightAttempt,
  type FlightLease,
  type LookupOptions,
  type ResponseCache,
  type WaitForFlightOptions,
} from './response-cache.js';
export {
  RedisResponseCache,
  type RedisResponseCacheDeps,
  type RedisResponseCacheOptions,
} from './redis-response-cache.js';
export {
  MemoryResponseCache,
  type MemoryResponseCacheDeps,
  type MemoryResponseCacheOptions,
} from './memory-response-cache.js';
export { registerCacheAdmin } from './admin.js';
