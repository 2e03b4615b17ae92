import type { Logger, Redis } from '@actionedx/shared';
import {
  SessionMetadataSchema,
  ownedByOther,
  sessionKey,
  type OpenedSession,
  type SessionMetadata,
  type SessionStore,
} from './session-store.js';

// The session if there is one, else the fresh one stored: one round trip, and two clients opening the same
// new id at once cannot both create it. ARGV: the fresh session's JSON, its TTL in seconds.
const OPEN_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return {1, ARGV[1]}
`;
// Write unless another user owns the stored session. ARGV: JSON, TTL, the writer's user id ('' for none).
const SAVE_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, doc = pcall(cjson.decode, cur)
  if ok and type(doc) == 'table' and type(doc.user_id) == 'string' and doc.user_id ~= ARGV[3] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
`;

type SessionCommands = Redis & {
  wsSessionOpen(key: string, json: string, ttl: number): Promise<[number, string]>;
  wsSessionSave(key: string, json: string, ttl: number, owner: string): Promise<number>;
};

/**
 * Sessions in Redis (`ws_session:<id>`, JSON, with a TTL), shared by every gateway. Fails open: when Redis
 * is down a session simply starts fresh; one warning per outage, not one per message.
 */
export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis';
  private failing = false;

  private readonly redis: SessionCommands;

  constructor(
    redis: Redis,
    private readonly ttlSeconds: number,
    private readonly logger: Logger,
  ) {
    redis.defineCommand('wsSessionOpen', { numberOfKeys: 1, lua: OPEN_LUA });
    redis.defineCommand('wsSessionSave', { numberOfKeys: 1, lua: SAVE_LUA });
    this.redis = redis as SessionCommands;
  }

  async open(fresh: SessionMetadata): Promise<OpenedSession | 'taken' | undefined> {
    try {
      const [created, raw] = await this.redis.wsSessionOpen(sessionKey(fresh.session_id), JSON.stringify(fresh), this.ttlSeconds);
      this.recovered();
      if (created === 1) return { session: { ...fresh }, created: true };
      const parsed = SessionMetadataSchema.safeParse(JSON.parse(raw));
      // An unreadable record is replaced by the fresh session on the next save.
      if (!parsed.success) return { session: { ...fresh }, created: true };
      return ownedByOther(parsed.data, fresh.user_id) ? 'taken' : { session: parsed.data, created: false };
    } catch (err) {
      return this.failed(err);
    }
  }

  async load(sessionId: string): Promise<SessionMetadata | undefined> {
    try {
      const raw = await this.redis.get(sessionKey(sessionId));
      this.recovered();
      if (raw === null) return undefined;
      const parsed = SessionMetadataSchema.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : undefined;
    } catch (err) {
      return this.failed(err);
    }
  }

  async save(session: SessionMetadata): Promise<void> {
    try {
      await this.redis.wsSessionSave(sessionKey(session.session_id), JSON.stringify(session), this.ttlSeconds, session.user_id ?? '');
      this.recovered();
    } catch (err) {
      this.failed(err);
    }
  }

  async remove(sessionId: string): Promise<void> {
    try {
      await this.redis.del(sessionKey(sessionId));
      this.recovered();
    } catch (err) {
      this.failed(err);
    }
  }

  private failed(err: unknown): undefined {
    if (!this.failing) {
      this.failing = true;
      this.logger.warn({ err }, 'session store unavailable; sessions go on without it');
    }
    return undefined;
  }

  private recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.logger.info('session store available again');
  }
}
