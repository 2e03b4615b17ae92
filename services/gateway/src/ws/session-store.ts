import { z } from 'zod';
import { MODES } from '@actionedx/shared';

/** What is kept about a WebSocket session (the seed's session metadata). */
export const SessionMetadataSchema = z.object({
  session_id: z.string(),
  user_id: z.string().nullable(),
  /** ISO time of the first connection of the session. */
  connected_at: z.string(),
  /** Chat turns sent on the session, across reconnections. */
  message_count: z.number().int().nonnegative(),
  mode: z.enum(MODES),
});
export type SessionMetadata = z.infer<typeof SessionMetadataSchema>;

/**
 * The Redis key of a session. The id is percent-encoded, so its `:` and `@` can never read as another
 * segment of the key; ids of letters, digits, `_ . -` keep the key they always had.
 */
export const sessionKey = (sessionId: string): string => `ws_session:${encodeURIComponent(sessionId)}`;

/** What `open` found: the session to use, and whether it was created just now. */
export interface OpenedSession {
  session: SessionMetadata;
  created: boolean;
}

/**
 * A session belongs to the user who created it (`user_id`; null: nobody, open mode without a user). Anyone
 * else is refused, as if it did not exist (404: ids cannot be probed).
 */
export const ownedByOther = (stored: SessionMetadata, userId: string | null): boolean =>
  stored.user_id !== null && stored.user_id !== userId;

/**
 * Session metadata that outlives a connection, so a client that reconnects keeps its mode and count, and
 * the session's owner. Implementations fail open for availability (a store that is down never breaks a
 * socket) but never for ownership: a session is never handed to, or overwritten by, another user.
 */
export interface SessionStore {
  readonly kind: 'redis' | 'memory';
  load(sessionId: string): Promise<SessionMetadata | undefined>;
  /**
   * The stored session for `fresh.user_id`, or `fresh` stored as new when there is none, atomically;
   * `taken` when it belongs to another user; undefined when the store cannot say (the caller goes on with
   * `fresh` unsaved).
   */
  open(fresh: SessionMetadata): Promise<OpenedSession | 'taken' | undefined>;
  /** Write the metadata and restart its time to live, unless the stored session belongs to another user. */
  save(session: SessionMetadata): Promise<void>;
  remove(sessionId: string): Promise<void>;
}
