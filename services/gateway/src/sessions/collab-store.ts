import type { Mode } from '@actionedx/shared';

/** What is kept about a collaboration session (its members apart). */
export interface CollabSession {
  session_id: string;
  owner: string;
  title?: string;
  mode: Mode;
  join_token: string;
  created_at: string;
}

export type MemberRole = 'owner' | 'member';

/** The outcome of adding a member. */
export type AddOutcome = 'added' | 'already' | 'full' | 'missing';

/**
 * Collaboration sessions shared by every gateway replica: the session and its members, the presence of the
 * members' sockets (entries that expire unless their gateway renews them, so a dead gateway's sockets time
 * out), and the one-turn-at-a-time lock (a lease, so a dead gateway's turn frees the session).
 */
export interface CollabStore {
  readonly kind: 'redis' | 'memory';
  create(session: CollabSession): Promise<void>;
  get(sessionId: string): Promise<CollabSession | undefined>;
  setMode(sessionId: string, mode: Mode): Promise<void>;
  /** The session is in use: its time to live starts again. */
  keepAlive(sessionId: string): Promise<void>;
  /** Member user ids with their role, the owner first. */
  members(sessionId: string): Promise<Map<string, MemberRole>>;
  role(sessionId: string, userId: string): Promise<MemberRole | undefined>;
  /** Adds unless the session has `maxMembers` already; atomic across replicas. */
  addMember(sessionId: string, userId: string, maxMembers: number): Promise<AddOutcome>;
  /** True when the user was a member. */
  removeMember(sessionId: string, userId: string): Promise<boolean>;

  /** Marks the socket `connKey` of `userId` present until `ttlMs` from now. */
  touchPresence(sessionId: string, connKey: string, userId: string, ttlMs: number): Promise<void>;
  dropPresence(sessionId: string, connKey: string, userId: string): Promise<void>;
  /** Live sockets per user (expired entries are not counted, and are swept). */
  presence(sessionId: string): Promise<Map<string, number>>;

  /** Takes the session's turn for `holder` unless another holds it; the lease ends after `leaseMs` unless renewed. */
  acquireTurn(sessionId: string, holder: string, leaseMs: number): Promise<boolean>;
  /** Extends the lease; false when `holder` no longer holds it. */
  renewTurn(sessionId: string, holder: string, leaseMs: number): Promise<boolean>;
  releaseTurn(sessionId: string, holder: string): Promise<void>;
}
