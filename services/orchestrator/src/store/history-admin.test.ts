import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AdminReplySchema,
  InProcessBus,
  SessionHistorySchema,
  SessionListSchema,
  Subjects,
  createDbMetrics,
  createLogger,
  decodeJson,
  encodeJson,
  type AdminReply,
} from '@actionedx/shared';
import type { ConversationTurn } from './conversation-store.js';
import { registerHistoryAdmin } from './history-admin.js';
import { MemoryConversationStore } from './memory-conversation-store.js';

const logger = createLogger({ service: 'history-admin-test', version: 'test', level: 'silent' });

let n = 0;
const turn = (user_id: string, session_id: string, message: string): ConversationTurn => ({
  request_id: `r-${++n}`,
  session_id,
  user_id,
  mode: 'ally',
  task_type: 'realtime_tutoring',
  message,
  response: `answer to ${message}`,
  model: 'gpt-4o-mini',
  cached: n % 2 === 0,
  usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 },
  cost_usd: 0.0001,
  latency_ms: 12,
  created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, n)),
});

describe('session history over the bus', () => {
  let bus: InProcessBus;
  let store: MemoryConversationStore;
  let stop: () => void;

  const ask = async (body: unknown, subject: string = Subjects.conversationHistory): Promise<AdminReply> => {
    const reply = await bus.request(subject, encodeJson(body), { timeoutMs: 5_000 });
    return decodeJson(AdminReplySchema, reply.data);
  };

  beforeEach(() => {
    bus = new InProcessBus();
    store = new MemoryConversationStore({ metrics: createDbMetrics(new Registry()) });
    stop = registerHistoryAdmin(bus, store, logger);
  });

  afterEach(async () => {
    stop();
    await store.close();
    await bus.close();
  });

  it("answers with the user's turns of that session only, oldest first, with their figures", async () => {
    await store.appendTurn(turn('ana', 's-1', 'first'));
    await store.appendTurn(turn('ben', 's-1', 'not hers'));
    await store.appendTurn(turn('ana', 's-2', 'another session'));
    await store.appendTurn(turn('ana', 's-1', 'second'));
    const reply = await ask({ user_id: 'ana', session_id: 's-1' });
    expect(reply.ok).toBe(true);
    const history = SessionHistorySchema.parse(reply.ok && reply.data);
    expect(history.session_id).toBe('s-1');
    expect(history.turns.map((t) => t.message)).toEqual(['first', 'second']);
    expect(history.turns[0]).toMatchObject({ response: 'answer to first', model: 'gpt-4o-mini', mode: 'ally', cost_usd: 0.0001, created_at: '2026-01-01T00:00:01.000Z' });
    expect(history.turns[0]).not.toHaveProperty('user_id');
  });

  it('keeps the newest `limit` turns', async () => {
    for (const m of ['a', 'b', 'c']) await store.appendTurn(turn('ana', 's-3', m));
    const reply = await ask({ user_id: 'ana', session_id: 's-3', limit: 2 });
    expect(SessionHistorySchema.parse(reply.ok && reply.data).turns.map((t) => t.message)).toEqual(['b', 'c']);
  });

  it('answers an empty list for a session without turns, and refuses a malformed request', async () => {
    const empty = await ask({ user_id: 'ana', session_id: 'nothing-here' });
    expect(SessionHistorySchema.parse(empty.ok && empty.data).turns).toEqual([]);
    const bad = await ask({ user_id: 'ana', session_id: 'has space' });
    expect(bad).toMatchObject({ ok: false, error: { code: 'invalid_message' } });
    const tooMany = await ask({ user_id: 'ana', session_id: 's-1', limit: 10_000 });
    expect(tooMany).toMatchObject({ ok: false, error: { code: 'invalid_message' } });
  });

  it("lists the user's sessions, most recently used first, with a title and a count", async () => {
    await store.appendTurn(turn('ana', 'old', 'the old one'));
    await store.appendTurn(turn('ben', 'his', 'not hers'));
    await store.appendTurn(turn('ana', 'new', 'the new one'));
    await store.appendTurn(turn('ana', 'new', 'again'));
    const reply = await ask({ user_id: 'ana' }, Subjects.conversationSessions);
    const list = SessionListSchema.parse(reply.ok && reply.data);
    expect(list.sessions.map((s) => [s.session_id, s.turns, s.first_message])).toEqual([
      ['new', 2, 'the new one'],
      ['old', 1, 'the old one'],
    ]);
    expect(list.sessions[0]!.last_at).toMatch(/^2026-01-01T/);
    const one = await ask({ user_id: 'ana', limit: 1 }, Subjects.conversationSessions);
    expect(SessionListSchema.parse(one.ok && one.data).sessions).toHaveLength(1);
    expect(await ask({ user_id: 'ana', limit: 0 }, Subjects.conversationSessions)).toMatchObject({ ok: false, error: { code: 'invalid_message' } });
  });

  it('answers a store failure as a retryable error, not silence', async () => {
    await store.close();
    const reply = await ask({ user_id: 'ana', session_id: 's-1' });
    expect(reply).toMatchObject({ ok: false, error: { retryable: true } });
  });
});
