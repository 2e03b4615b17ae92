import { z } from 'zod';
import { JobDoneEventSchema, JobFailedEventSchema, JobProgressEventSchema } from './jobs.js';
import { ErrorBodySchema } from '../errors.js';
import { ChatRequestSchema, ChatResponseSchema, MODES, SessionIdSchema, UserIdSchema } from './chat.js';
import { SessionMemberSchema } from './sessions.js';

/**
 * The assistant's WebSocket protocol, `/ws/assistant/<session_id>?user_id=<user_id>`: one JSON object per
 * WebSocket message in each direction. The gateway parses what clients send with these schemas and types
 * what it sends with their types; the AsyncAPI document is generated from them.
 */

/** What the upgrade URL names. */
export const WsPathParamsSchema = z.object({ session_id: SessionIdSchema });
export const WsQuerySchema = z.object({
  /** The default `user_id` of the socket's turns; a turn may name its own. */
  user_id: UserIdSchema.optional(),
  /**
   * With authentication on: the JWT or API key, for clients that cannot set `Authorization` on the upgrade
   * (browsers). Its user is the socket's; a `user_id` that names another is refused.
   */
  access_token: z.string().optional().describe('A JWT or API key, for clients that cannot send an Authorization header (browsers)'),
});

// ---- client → server

/** The `type` values that mark a chat turn; a message without `type` is one too (the seed's client). */
export const WS_CHAT_TURN_TYPES = ['message', 'chat'] as const;

/**
 * A chat turn: the REST chat request without `session_id` (the path names the session). `user_id` and
 * `mode` may be left out: the socket's `?user_id=` and its current mode (see `mode_switch`) fill them in.
 */
export const WsChatTurnSchema = ChatRequestSchema.omit({ session_id: true }).extend({
  type: z.enum(WS_CHAT_TURN_TYPES).optional(),
  user_id: UserIdSchema.optional(),
  mode: z.enum(MODES).optional(),
});
export const WsPingSchema = z.object({ type: z.literal('ping') });
/** Echoed to the client as a `typing` message. */
export const WsTypingSchema = z.object({ type: z.literal('typing'), is_typing: z.boolean().default(true) });
/** The mode of the following turns that do not name one; kept with the session. */
export const WsModeSwitchSchema = z.object({ type: z.literal('mode_switch'), mode: z.enum(MODES) });
/** Stops the running turn (it ends with an `error` `cancelled`). */
export const WsCancelSchema = z.object({ type: z.literal('cancel') });

/**
 * Resume an answer after a reconnection (on any gateway replica): the chunks after `last_seq` are sent again,
 * then the rest live, then `stream_end` and `response`, exactly once and in order; or `resume_failed`.
 */
export const WsResumeSchema = z.object({
  type: z.literal('resume'),
  /** The `request_id` of the answer's `stream_start`. */
  request_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a request id: 1-64 letters, digits, _ or -'),
  /** The last `stream_chunk.seq` the client got; -1 for none. */
  last_seq: z.number().int().min(-1),
});

/**
 * Each client message's schema by its `type`, so that a reader picks one schema and its errors name the
 * field (a union would report them all). A message without `type` is a chat turn.
 */
export const WS_CLIENT_MESSAGES = {
  message: WsChatTurnSchema,
  chat: WsChatTurnSchema,
  ping: WsPingSchema,
  typing: WsTypingSchema,
  mode_switch: WsModeSwitchSchema,
  cancel: WsCancelSchema,
  resume: WsResumeSchema,
} as const;
export type WsClientMessageType = keyof typeof WS_CLIENT_MESSAGES;
export const isWsClientMessageType = (type: unknown): type is WsClientMessageType =>
  typeof type === 'string' && Object.hasOwn(WS_CLIENT_MESSAGES, type);

export const WsClientMessageSchema = z.union([WsChatTurnSchema, WsPingSchema, WsTypingSchema, WsModeSwitchSchema, WsCancelSchema, WsResumeSchema]);
export type WsResume = z.output<typeof WsResumeSchema>;
export type WsChatTurn = z.output<typeof WsChatTurnSchema>;
export type WsClientMessage = z.output<typeof WsClientMessageSchema>;
export type WsClientMessageInput = z.input<typeof WsClientMessageSchema>;

// ---- server → client

const timestamp = z.string().describe('ISO 8601 time the gateway sent the message');

export const WsConnectedSchema = z.object({
  type: z.literal('connected'),
  session_id: SessionIdSchema,
  message: z.string(),
  /** The session's current mode (kept across reconnections). */
  mode: z.enum(MODES),
  timestamp,
});
/** A worker took the turn; chunks follow. */
export const WsStreamStartSchema = z.object({ type: z.literal('stream_start'), request_id: z.string() });
export const WsStreamChunkSchema = z.object({
  type: z.literal('stream_chunk'),
  content: z.string(),
  /** From 0 within the current answer, no gaps. */
  seq: z.number().int().nonnegative(),
});
/** The chunks sent so far are void: the whole answer follows again from `seq` 0. */
export const WsStreamResetSchema = z.object({ type: z.literal('stream_reset'), request_id: z.string() });
/** The last chunk was sent; the `response` follows. */
export const WsStreamEndSchema = z.object({ type: z.literal('stream_end'), request_id: z.string() });
/** The whole answer, as the REST chat endpoint returns it. */
export const WsResponseSchema = ChatResponseSchema.extend({ type: z.literal('response') });
export const WsTypingEchoSchema = z.object({
  type: z.literal('typing'),
  session_id: SessionIdSchema,
  user_id: UserIdSchema.nullable(),
  is_typing: z.boolean(),
  timestamp,
});
export const SYSTEM_EVENTS = ['member_joined', 'member_left', 'mode_switched'] as const;
export const WsSystemSchema = z.object({
  type: z.literal('system'),
  message: z.string(),
  /** Present when the message reports a mode switch. */
  mode: z.enum(MODES).optional(),
  /** Collaboration sessions: what happened (a member joined or left, the mode was switched)... */
  event: z.enum(SYSTEM_EVENTS).optional(),
  /** ...and by or to whom. */
  user_id: UserIdSchema.optional(),
});
/**
 * Collaboration sessions: a member's turn, sent to every member (its sender too) before the assistant's
 * `stream_start`; the answer's frames follow with the same `request_id`. One turn at a time per session: a
 * message sent while one is answered is refused with an `error` `session_busy`.
 */
export const WsTurnSchema = z.object({
  type: z.literal('turn'),
  session_id: SessionIdSchema,
  request_id: z.string(),
  user_id: UserIdSchema,
  message: z.string(),
  mode: z.enum(MODES),
});
/** Collaboration sessions: who is a member and who is online, sent to every member when it changes. */
export const WsPresenceSchema = z.object({
  type: z.literal('presence'),
  session_id: SessionIdSchema,
  members: z.array(SessionMemberSchema),
});
export const WsPongSchema = z.object({ type: z.literal('pong'), timestamp });
/** Why a resume could not replay the answer. */
export const RESUME_FAILURE_CODES = ['resume_expired', 'resume_unknown', 'resume_forbidden'] as const;
export type ResumeFailureCode = (typeof RESUME_FAILURE_CODES)[number];
/**
 * A `resume` that cannot replay the answer: past the retention window (`resume_expired`), an id never seen
 * (`resume_unknown`), or another user's answer (`resume_forbidden`). `response` is the final answer (the
 * `response` message's body) when it is known: after the window, the answer itself is kept longer than its chunks.
 */
export const WsResumeFailedSchema = z.object({
  type: z.literal('resume_failed'),
  request_id: z.string(),
  code: z.enum(RESUME_FAILURE_CODES),
  message: z.string(),
  response: ChatResponseSchema.optional(),
});
/** Bad input or a failed turn; the socket stays usable. The fields of the REST error body. */
export const WsErrorSchema = ErrorBodySchema.shape.error.extend({ type: z.literal('error') });

export const WsServerMessageSchema = z.discriminatedUnion('type', [
  WsConnectedSchema,
  WsStreamStartSchema,
  WsStreamChunkSchema,
  WsStreamResetSchema,
  WsStreamEndSchema,
  WsResponseSchema,
  WsTypingEchoSchema,
  WsSystemSchema,
  WsPongSchema,
  WsErrorSchema,
  WsResumeFailedSchema,
  WsTurnSchema,
  WsPresenceSchema,
  // Pushed unasked to every socket of a job's owner.
  JobProgressEventSchema,
  JobDoneEventSchema,
  JobFailedEventSchema,
]);
export type WsConnected = z.infer<typeof WsConnectedSchema>;
export type WsStreamChunk = z.infer<typeof WsStreamChunkSchema>;
export type WsResponse = z.infer<typeof WsResponseSchema>;
export type WsError = z.infer<typeof WsErrorSchema>;
export type WsResumeFailed = z.infer<typeof WsResumeFailedSchema>;
export type WsTurn = z.infer<typeof WsTurnSchema>;
export type WsPresence = z.infer<typeof WsPresenceSchema>;
export type WsServerMessage = z.infer<typeof WsServerMessageSchema>;
export type WsServerMessageType = WsServerMessage['type'];
