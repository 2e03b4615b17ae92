import type { Mode } from '@actionedx/shared';
import type { AddOutcome, CollabSession, CollabStore, MemberRole } from './collab-store.js';

interface Entry {
  session: CollabSession;
  members: Map<string, MemberRole>;
  /** connKey → user and expiry (epoch ms). */
  presence: Map<string, { userId: string; until: number }>;
  turn: { holder: string; until: number } | undefined;
}

/** Collaboration sessions in this process (the embedded mode, unit tests): the same rules as in Redis. */
export class MemoryCollabStore implements CollabStore {
  readonly kind = 'memory';
  private readonly sessions = new Map<string, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  async create(session: CollabSession): Promise<void> {
    this.sessions.set(session.session_id, {
      session: { ...session },
      members: new Map([[session.owner, 'owner']]),
      presence: new Map(),
      turn: undefined,
    });
  }

  async get(sessionId: string): Promise<CollabSession | undefined> {
    const e = this.sessions.get(sessionId);
    return e ? { ...e.session } : undefined;
  }

  async setMode(sessionId: string, mode: Mode): Promise<void> {
    const e = this.sessions.get(sessionId);
    if (e) e.session.mode = mode;
  }

  async keepAlive(_sessionId: string): Promise<void> {
    // Kept for as long as the process lives.
  }

  async members(sessionId: string): Promise<Map<string, MemberRole>> {
    return new Map(this.sessions.get(sessionId)?.members ?? []);
  }

  async role(sessionId: string, userId: string): Promise<MemberRole | undefined> {
    return this.sessions.get(sessionId)?.members.get(userId);
  }

  async addMember(sessionId: string, userId: string, maxMembers: number): Promise<AddOutcome> {
    const e = this.sessions.get(sessionId);
    if (!e) return 'missing';
    if (e.members.has(userId)) return 'already';
    if (e.members.size >= maxMembers) return 'full';
    e.members.set(userId, 'member');
    return 'added';
  }

  async removeMember(sessionId: string, userId: string): Promise<boolean> {
    const e = this.sessions.get(sessionId);
    // Never the owner: the session would be nobody's.
    if (e === undefined || e.members.get(userId) !== 'member') return false;
    return e.members.delete(userId);
  }

  async touchPresence(sessionId: string, connKey: string, userId: string, ttlMs: number): Promise<void> {
    this.sessions.get(sessionId)?.presence.set(connKey, { userId, until: this.now() + ttlMs });
  }

  async dropPresence(sessionId: string, connKey: string, _userId: string): Promise<void> {
    this.sessions.get(sessionId)?.presence.delete(connKey);
  }

  async presence(sessionId: string): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    const e = this.sessions.get(sessionId);
    if (!e) return counts;
    const now = this.now();
    for (const [key, p] of e.presence) {
      if (p.until <= now) e.presence.delete(key);
      else counts.set(p.userId, (counts.get(p.userId) ?? 0) + 1);
    }
    return counts;
  }

  async acquireTurn(sessionId: string, holder: string, leaseMs: number): Promise<boolean> {
    const e = this.sessions.get(sessionId);
    if (!e) return false;
    if (e.turn !== undefined && e.turn.until > this.now() && e.turn.holder !== holder) return false;
    e.turn = { holder, until: this.now() + leaseMs };
    return true;
  }

  async renewTurn(sessionId: string, holder: string, leaseMs: number): Promise<boolean> {
    const e = this.sessions.get(sessionId);
    if (e?.turn?.holder !== holder || e.turn.until <= this.now()) return false;
    e.turn.until = this.now() + leaseMs;
    return true;
  }

  async releaseTurn(sessionId: string, holder: string): Promise<void> {
    const e = this.sessions.get(sessionId);
    if (e?.turn?.holder === holder) e.turn = undefined;
  }
}
