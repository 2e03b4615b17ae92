import type { Redis } from '@actionedx/shared';

/**
 * The cache's Lua scripts as ioredis commands (`defineCommand`, as BullMQ's script loader does): ioredis sends
 * EVALSHA and falls back to EVAL on NOSCRIPT, so hot paths send a 40-byte hash, not the source.
 */
const SCRIPTS = {
  /** GET an answer and, when found and ARGV[1] is '1', count the hit; one round trip. */
  cacheGet: {
    numberOfKeys: 2,
    lua: `
local value = redis.call('GET', KEYS[1])
if value and ARGV[1] == '1' then
  redis.call('HINCRBY', KEYS[2], 'hits', 1)
end
return value
`,
  },
  /** Delete a flight lock only if ARGV[1] still owns it, and tell the waiters on channel ARGV[2]. */
  flightRelease: {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'released')
  return 1
end
return 0
`,
  },
  /** Give a flight lock ARGV[2] more milliseconds, only if ARGV[1] still owns it. */
  flightExtend: {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`,
  },
} as const;

/** The commands `defineCacheScripts` adds to a client. */
export interface CacheScripts {
  cacheGet(answerKey: string, statsKey: string, record: '0' | '1'): Promise<string | null>;
  flightRelease(lockKey: string, token: string, channel: string): Promise<number>;
  flightExtend(lockKey: string, token: string, leaseMs: number): Promise<number>;
}

const defined = new WeakSet<Redis>();

/** Adds the cache's scripts to `redis` (once per client) and returns it typed with them. */
export function defineCacheScripts(redis: Redis): Redis & CacheScripts {
  if (!defined.has(redis)) {
    for (const [name, script] of Object.entries(SCRIPTS)) redis.defineCommand(name, script);
    defined.add(redis);
  }
  return redis as Redis & CacheScripts;
}
