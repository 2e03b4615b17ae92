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

/**
 * Session metadata that outlives a connection, so a client that reconnects keeps its mode and count.
 * Implementations fail open: a store that is down never breaks a socket.
 */
export interface SessionStore {
  readonly kind: 'redis' | 'memory';
  load(sessionId: string): Promise<SessionMetadata | undefined>;
  /** Write the metadata and restart its time to live. */
  save(session: SessionMetadata): Promise<void>;
  remove(sessionId: string): Promise<void>;
}
