import type { ChatRequest, Logger } from '@actionedx/shared';
import type { ConversationStore } from '../store/index.js';

/** Earlier turns of a session sent to the model with a new message. */
const SESSION_HISTORY_TURNS = 10;

/** Continues a session: a turn with a session and no history of its own gets the stored conversation. */
export class SessionHistory {
  constructor(private readonly deps: { store: ConversationStore; logger: Logger }) {}

  /** The request with its session's last turns as history; unchanged when there are none or the store fails. */
  async attachTo(req: ChatRequest): Promise<ChatRequest> {
    if (!req.session_id || req.history.length > 0) return req;
    try {
      const turns = await this.deps.store.history({ user_id: req.user_id, session_id: req.session_id, limit: SESSION_HISTORY_TURNS });
      if (turns.length === 0) return req;
      const history = turns.flatMap((t) => [
        { role: 'user' as const, content: t.message },
        { role: 'assistant' as const, content: t.response },
      ]);
      return { ...req, history };
    } catch (err) {
      this.deps.logger.warn({ err }, 'conversation history unavailable; answering without it');
      return req;
    }
  }
}
