import { ownedByOther, type OpenedSession, type SessionMetadata, type SessionStore } from './session-store.js';

/** Sweep expired entries when the map grows past this, so abandoned sessions cannot pile up. */
const SWEEP_ABOVE = 10_000;

/** Sessions in this process only (embedded mode, tests, no REDIS_URL). */
export class MemorySessionStore implements SessionStore {
  readonly kind = 'memory';
  private readonly sessions = new Map<string, { session: SessionMetadata; expiresAt: number }>();

  constructor(
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  async load(sessionId: string): Promise<SessionMetadata | undefined> {
    const entry = this.sessions.get(sessionId);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.sessions.delete(sessionId);
      return undefined;
    }
    return { ...entry.session };
  }

  async open(fresh: SessionMetadata): Promise<OpenedSession | 'taken'> {
    const stored = await this.load(fresh.session_id);
    if (stored === undefined) {
      await this.save(fresh);
      return { session: { ...fresh }, created: true };
    }
    return ownedByOther(stored, fresh.user_id) ? 'taken' : { session: stored, created: false };
  }

  async save(session: SessionMetadata): Promise<void> {
    const stored = await this.load(session.session_id);
    if (stored !== undefined && ownedByOther(stored, session.user_id)) return;
    if (this.sessions.size >= SWEEP_ABOVE) this.sweep();
    this.sessions.set(session.session_id, { session: { ...session }, expiresAt: this.now() + this.ttlSeconds * 1000 });
  }

  async remove(sessionId: string): Promise<void> {
    this.sessions.delete(sessionId);
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, entry] of this.sessions) if (entry.expiresAt <= now) this.sessions.delete(id);
  }
}
