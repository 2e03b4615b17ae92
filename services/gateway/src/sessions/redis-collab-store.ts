import { MODES, type Mode, type Redis } from '@actionedx/shared';
import type { AddOutcome, CollabSession, CollabStore, MemberRole } from './collab-store.js';

// Add a member unless the session is gone or full, atomically. KEYS: session, members. ARGV: user, max, ttl s.
const ADD_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 'already' end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[2]) then return 'full' end
redis.call('HSET', KEYS[2], ARGV[1], 'member')
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 'added'
`;
// Remove a member, never the owner (the session would be nobody's). KEYS: members. ARGV: user.
const REMOVE_LUA = `
local role = redis.call('HGET', KEYS[1], ARGV[1])
if role == false or role == 'owner' then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])
`;
// Times are Redis's own (TIME), so gateways with skewed clocks agree on who has expired.
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;
// Mark a socket present for ARGV[1] ms; the set lives as long as its longest entry (never shortened by a shorter
// one). KEYS: presence. ARGV: ttl ms, entry.
const TOUCH_LUA = `
${NOW_MS}
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
local keep = tonumber(ARGV[1]) * 2
if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], keep) end
return 1
`;
// The live entries, the expired swept. KEYS: presence.
const PRESENT_LUA = `
${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
`;
// Extend or end the turn lease only for its holder. KEYS: turn. ARGV: holder, lease ms.
const RENEW_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

type CollabCommands = Redis & {
  collabAdd(session: string, members: string, user: string, max: number, ttl: number): Promise<AddOutcome>;
  collabRemove(members: string, user: string): Promise<number>;
  collabTouch(presence: string, ttlMs: number, entry: string): Promise<number>;
  collabPresent(presence: string): Promise<string[]>;
  collabRenew(turn: string, holder: string, leaseMs: number): Promise<number>;
  collabRelease(turn: string, holder: string): Promise<number>;
};

/** The keys of one session; the `{id}` hash tag keeps them on one Redis Cluster slot (the scripts need that). */
const keys = (id: string) => ({
  session: `collab:{${id}}`,
  members: `collab:{${id}}:members`,
  presence: `collab:{${id}}:presence`,
  turn: `collab:{${id}}:turn`,
});

/** A presence entry: the user, a tab, the socket's key (user ids hold no tab). */
const entryOf = (userId: string, connKey: string) => `${userId}\t${connKey}`;

const isMode = (v: unknown): v is Mode => typeof v === 'string' && (MODES as readonly string[]).includes(v);

/**
 * Collaboration sessions in Redis, shared by every gateway: `collab:{id}` (hash: owner, mode, title, join token),
 * `collab:{id}:members` (hash: user → role), `collab:{id}:presence` (sorted set of sockets scored by when they
 * expire), `collab:{id}:turn` (the turn lock: holder, with a lease). Sessions and members expire `ttlSeconds`
 * after their last use (a member joining or connecting).
 */
export class RedisCollabStore implements CollabStore {
  readonly kind = 'redis';
  private readonly redis: CollabCommands;

  constructor(
    redis: Redis,
    private readonly ttlSeconds: number,
  ) {
    redis.defineCommand('collabAdd', { numberOfKeys: 2, lua: ADD_LUA });
    redis.defineCommand('collabRemove', { numberOfKeys: 1, lua: REMOVE_LUA });
    redis.defineCommand('collabTouch', { numberOfKeys: 1, lua: TOUCH_LUA });
    redis.defineCommand('collabPresent', { numberOfKeys: 1, lua: PRESENT_LUA });
    redis.defineCommand('collabRenew', { numberOfKeys: 1, lua: RENEW_LUA });
    redis.defineCommand('collabRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
    this.redis = redis as CollabCommands;
  }

  async create(s: CollabSession): Promise<void> {
    const k = keys(s.session_id);
    const fields: Record<string, string> = { owner: s.owner, mode: s.mode, join_token: s.join_token, created_at: s.created_at };
    if (s.title !== undefined) fields.title = s.title;
    await this.redis
      .multi()
      .hset(k.session, fields)
      .expire(k.session, this.ttlSeconds)
      .hset(k.members, s.owner, 'owner')
      .expire(k.members, this.ttlSeconds)
      .exec();
  }

  async get(sessionId: string): Promise<CollabSession | undefined> {
    const h = await this.redis.hgetall(keys(sessionId).session);
    if (h.owner === undefined || h.join_token === undefined) return undefined;
    return {
      session_id: sessionId,
      owner: h.owner,
      mode: isMode(h.mode) ? h.mode : 'strategist',
      join_token: h.join_token,
      created_at: h.created_at ?? '',
      ...(h.title !== undefined ? { title: h.title } : {}),
    };
  }

  async setMode(sessionId: string, mode: Mode): Promise<void> {
    const k = keys(sessionId).session;
    // Only a session that exists: HSET would make a half one.
    if ((await this.redis.exists(k)) === 1) await this.redis.hset(k, 'mode', mode);
  }

  async keepAlive(sessionId: string): Promise<void> {
    const k = keys(sessionId);
    await this.redis.multi().expire(k.session, this.ttlSeconds).expire(k.members, this.ttlSeconds).exec();
  }

  async members(sessionId: string): Promise<Map<string, MemberRole>> {
    const h = await this.redis.hgetall(keys(sessionId).members);
    const entries = Object.entries(h).map(([u, r]) => [u, r === 'owner' ? 'owner' : 'member'] as const);
    entries.sort((a, b) => (a[1] === b[1] ? a[0].localeCompare(b[0]) : a[1] === 'owner' ? -1 : 1));
    return new Map(entries);
  }

  async role(sessionId: string, userId: string): Promise<MemberRole | undefined> {
    const r = await this.redis.hget(keys(sessionId).members, userId);
    return r === null ? undefined : r === 'owner' ? 'owner' : 'member';
  }

  async addMember(sessionId: string, userId: string, maxMembers: number): Promise<AddOutcome> {
    const k = keys(sessionId);
    return this.redis.collabAdd(k.session, k.members, userId, maxMembers, this.ttlSeconds);
  }

  async removeMember(sessionId: string, userId: string): Promise<boolean> {
    return (await this.redis.collabRemove(keys(sessionId).members, userId)) === 1;
  }

  async touchPresence(sessionId: string, connKey: string, userId: string, ttlMs: number): Promise<void> {
    await this.redis.collabTouch(keys(sessionId).presence, ttlMs, entryOf(userId, connKey));
  }

  async dropPresence(sessionId: string, connKey: string, userId: string): Promise<void> {
    await this.redis.zrem(keys(sessionId).presence, entryOf(userId, connKey));
  }

  async presence(sessionId: string): Promise<Map<string, number>> {
    const live = await this.redis.collabPresent(keys(sessionId).presence);
    const counts = new Map<string, number>();
    for (const entry of live) {
      const userId = entry.slice(0, entry.indexOf('\t'));
      counts.set(userId, (counts.get(userId) ?? 0) + 1);
    }
    return counts;
  }

  async acquireTurn(sessionId: string, holder: string, leaseMs: number): Promise<boolean> {
    return (await this.redis.set(keys(sessionId).turn, holder, 'PX', leaseMs, 'NX')) === 'OK';
  }

  async renewTurn(sessionId: string, holder: string, leaseMs: number): Promise<boolean> {
    return (await this.redis.collabRenew(keys(sessionId).turn, holder, leaseMs)) === 1;
  }

  async releaseTurn(sessionId: string, holder: string): Promise<void> {
    await this.redis.collabRelease(keys(sessionId).turn, holder);
  }
}
