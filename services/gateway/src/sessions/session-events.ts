import { z } from 'zod';
import { UserIdSchema, WsServerMessageSchema } from '@actionedx/shared';

/**
 * What travels on `session.<id>.events`: one server frame for every member socket of the session, on every
 * gateway. `origin` names the socket that already has the frame (its sender): it is skipped. `evict` names a
 * user removed from the session: their sockets get the frame, then are closed. `request_id` names the answer
 * of a turn's streamed frames.
 */
export const SessionEventSchema = z.object({
  origin: z.string().optional(),
  evict: UserIdSchema.optional(),
  /** The answer the frame belongs to (a turn's streamed frames): a socket replaying that answer skips it. */
  request_id: z.string().max(128).optional(),
  frame: WsServerMessageSchema,
});
export type SessionEvent = z.infer<typeof SessionEventSchema>;
