import { z } from 'zod';
import { MODES, SessionIdSchema, TASK_TYPES, UsageSchema, UserIdSchema } from './chat.js';

/** Turns of one `GET /api/sessions/{id}/history` at most (the conversation store's own cap). */
export const HISTORY_MAX_TURNS = 200;
export const HISTORY_DEFAULT_TURNS = 50;

/** `conversation.v1.history`: the newest turns of one user's session, as the conversation store has them. */
export const HistoryRequestSchema = z.object({
  user_id: UserIdSchema,
  session_id: SessionIdSchema,
  limit: z.number().int().min(1).max(HISTORY_MAX_TURNS).default(HISTORY_DEFAULT_TURNS),
});
export type HistoryRequest = z.output<typeof HistoryRequestSchema>;

/** One answered turn: the message, the answer and its figures. */
export const SessionTurnSchema = z.object({
  request_id: z.string(),
  mode: z.enum(MODES),
  task_type: z.enum(TASK_TYPES),
  message: z.string(),
  response: z.string(),
  model: z.string(),
  cached: z.boolean(),
  usage: UsageSchema,
  cost_usd: z.number().nonnegative(),
  latency_ms: z.number().nonnegative(),
  created_at: z.string().describe('ISO 8601'),
});
export type SessionTurn = z.infer<typeof SessionTurnSchema>;

/** The answer of `GET /api/sessions/{id}/history`: oldest turn first. */
export const SessionHistorySchema = z.object({
  session_id: SessionIdSchema,
  turns: z.array(SessionTurnSchema),
});
export type SessionHistory = z.infer<typeof SessionHistorySchema>;

/** Sessions of one `GET /api/sessions` at most (the conversation store's own cap). */
export const SESSIONS_MAX = 100;
export const SESSIONS_DEFAULT = 30;

/** `conversation.v1.sessions`: a user's sessions that have turns, most recently used first. */
export const SessionsRequestSchema = z.object({
  user_id: UserIdSchema,
  limit: z.number().int().min(1).max(SESSIONS_MAX).default(SESSIONS_DEFAULT),
});
export type SessionsRequest = z.output<typeof SessionsRequestSchema>;

export const SessionSummarySchema = z.object({
  session_id: SessionIdSchema,
  /** The user's turns in it. */
  turns: z.number().int().nonnegative(),
  /** The user's first message in it: a title. */
  first_message: z.string(),
  last_at: z.string().describe('ISO 8601 time of its newest turn'),
});
export type SessionSummaryView = z.infer<typeof SessionSummarySchema>;

/** The answer of `GET /api/sessions`. */
export const SessionListSchema = z.object({ sessions: z.array(SessionSummarySchema) });
export type SessionList = z.infer<typeof SessionListSchema>;
