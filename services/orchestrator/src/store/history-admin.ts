import {
  HistoryRequestSchema,
  QueueGroups,
  Subjects,
  decodeJson,
  type Bus,
  type SessionTurn,
  type Logger,
  type SessionHistory,
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
 * Answers `conversation.v1.history` in the orchestrators' queue group: a user's newest turns of one session,
 * oldest first, from the conversation store (which every replica shares). The gateway has decided who the user
 * is; a worker trusts the request. Returns a function that unsubscribes.
 */
export function registerHistoryAdmin(bus: Bus, store: ConversationStore, logger: Logger): () => void {
  const handle = async (data: Uint8Array): Promise<SessionHistory> => {
    const q = decodeJson(HistoryRequestSchema, data);
    const turns = await store.history({ user_id: q.user_id, session_id: q.session_id, limit: q.limit });
    return { session_id: q.session_id, turns: turns.map(toSessionTurn) };
  };
  const sub = bus.subscribe(Subjects.conversationHistory, (msg) => void answerAdminRequest(bus, msg, handle, logger), {
    queue: QueueGroups.orchestrators,
  });
  return () => sub.unsubscribe();
}
