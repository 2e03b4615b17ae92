import { z } from 'zod';
import { MODES, UserIdSchema } from './chat.js';

/**
 * Collaboration sessions: one assistant session with several members, each on their own socket, possibly on
 * different gateway replicas. The REST bodies and the member view shared by the REST answer and the
 * `presence` frame.
 */

/** Ids of collaboration sessions: made by the gateway, reserved (a single-user socket cannot take one). */
export const COLLAB_SESSION_ID = /^cs_[0-9a-f]{32}$/;
export const CollabSessionIdSchema = z.string().regex(COLLAB_SESSION_ID, 'a collaboration session id: cs_ then 32 hex digits');

export const SessionCreateSchema = z
  .object({
    title: z.string().trim().min(1).max(200).optional(),
    mode: z.enum(MODES).optional(),
    /** Open mode only (no authentication): the creator. */
    user_id: UserIdSchema.optional(),
  })
  .strict();
export const SessionInviteSchema = z.object({ user_id: UserIdSchema }).strict();
export const SessionJoinSchema = z
  .object({
    join_token: z.string().min(1).max(200),
    /** Open mode only: who joins. */
    user_id: UserIdSchema.optional(),
  })
  .strict();

export const SESSION_ROLES = ['owner', 'member'] as const;
export const SessionMemberSchema = z.object({
  user_id: UserIdSchema,
  role: z.enum(SESSION_ROLES),
  /** At least one socket of this member is connected (on any gateway) and its heartbeat is recent. */
  online: z.boolean(),
  /** The member's live sockets on the session, across gateways. */
  connections: z.number().int().nonnegative(),
});
export type SessionMember = z.infer<typeof SessionMemberSchema>;

export const SessionMembersSchema = z.object({ session_id: CollabSessionIdSchema, members: z.array(SessionMemberSchema) });
export type SessionMembers = z.infer<typeof SessionMembersSchema>;

export const SessionCreatedSchema = z.object({
  session_id: CollabSessionIdSchema,
  owner: UserIdSchema,
  title: z.string().optional(),
  mode: z.enum(MODES),
  /** Anyone holding it may join (`POST /api/sessions/{id}/join`); shown to the owner only. */
  join_token: z.string(),
  members: z.array(SessionMemberSchema),
});
export type SessionCreated = z.infer<typeof SessionCreatedSchema>;
