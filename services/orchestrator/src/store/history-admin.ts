import {
  HistoryRequestSchema,
  SessionsRequestSchema,
  QueueGroups,
  Subjects,
  decodeJson,
  type Bus,
  type SessionTurn,
  type Logger,
  type SessionHistory,
  type SessionList,
} from '@actionedx/shared';
import { answerAdminRequest } from '../cache/admin.js';
import type { ConversationStore, ConversationTurn } from './conversation-store.js';

export const toSessionTurn = (t: ConversationTurn): SessionTurn => ({
  request_id: t.request_id,
  mode: t.mode,
  task_type: t.task_type,
  message: t.message,
  response: t.response,
  model: t.model,
  cached: t.cached,
  usage: t.usage,
  cost_usd: t.cost_usd,
  latency_ms: t.latency_ms,
  created_at: t.created_at.toISOString(),
});

/**
 * Answers `conversation.v1.history` (a user's newest turns of one session, oldest first) and
 * `conversation.v1.sessions` (the user's sessions, most recently used first) in the orchestrators' queue group,
 * from the conversation store (which every replica shares). The gateway has decided who the user
 * is; a worker trusts the request. Returns a function that unsubscribes.
 */
export function registerHistoryAdmin(bus: Bus, store: ConversationStore, logger: Logger): () => void {
  const handle = async (data: Uint8Array): Promise<SessionHistory> => {
    const q = decodeJson(HistoryRequestSchema, data);
    const turns = await store.history({ user_id: q.user_id, session_id: q.session_id, limit: q.limit });
    return { session_id: q.session_id, turns: turns.map(toSessionTurn) };
  };
  const list = async (data: Uint8Array): Promise<SessionList> => {
    const q = decodeJson(SessionsRequestSchema, data);
    const sessions = await store.sessions({ user_id: q.user_id, limit: q.limit });
    return { sessions: sessions.map((s) => ({ ...s, last_at: s.last_at.toISOString() })) };
  };
  const routes: Array<[string, (data: Uint8Array) => Promise<unknown>]> = [
    [Subjects.conversationHistory, handle],
    [Subjects.conversationSessions, list],
  ];
  const subs = routes.map(([subject, run]) =>
    bus.subscribe(subject, (msg) => void answerAdminRequest(bus, msg, run, logger), { queue: QueueGroups.orchestrators }),
  );
  return () => {
    for (const s of subs) s.unsubscribe();
  };
}
