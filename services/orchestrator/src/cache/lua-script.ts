import { createHash } from 'node:crypto';
import type { Redis } from '@actionedx/shared';

/**
 * A Lua script run by its SHA (EVALSHA), sent in full only when Redis does not know it yet (after a
 * restart or SCRIPT FLUSH): hot paths send a 40-byte hash, not the source.
 */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/** GET an answer and count it as a hit or a miss (when ARGV[1] is '1'), in one round trip. */
export const LOOKUP = new LuaScript(`
local value = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  redis.call('HINCRBY', KEYS[2], value and 'hits' or 'misses', 1)
end
return value
`);

/** Delete a flight lock only if ARGV[1] still owns it, and tell the waiters on channel ARGV[2]. */
export const RELEASE_LOCK = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'released')
  return 1
end
return 0
`);

/** Give a flight lock ARGV[2] more milliseconds, only if ARGV[1] still owns it. */
export const EXTEND_LOCK = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`);
