export { CircuitBreaker, type BreakerState, type CircuitBreakerOptions, type ErrorRateRule } from './circuit-breaker.js';
export { ConcurrencyLimit } from './concurrency-limit.js';
export { backoffDelay, retryAfterMs, type BackoffOptions } from './backoff.js';
