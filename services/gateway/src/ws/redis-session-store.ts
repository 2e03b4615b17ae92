import type { Logger, Redis } from '@actionedx/shared';
import { SessionMetadataSchema, sessionKey, type SessionMetadata, type SessionStore } from './session-store.js';

/**
 * Sessions in Redis (`ws_session:<id>`, JSON, with a TTL), shared by every gateway. Fails open: when Redis
 * is down a session simply starts fresh; one warning per outage, not one per message.
 */
export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis';
  private failing = false;

  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
    private readonly logger: Logger,
  ) {}

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
      await this.redis.set(sessionKey(session.session_id), JSON.stringify(session), 'EX', this.ttlSeconds);
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
