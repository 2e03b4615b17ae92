import { describe, expect, it } from 'vitest';
import type { ConversationTurn } from './conversation-store.js';
import {
  HISTORY_SORT,
  conversationIndexes,
  fromDocument,
  historyFilter,
  sessionsFromAggregate,
  sessionsPipeline,
  toDocument,
  usageFromAggregate,
  usagePipeline,
} from './mongo-queries.js';

const turn: ConversationTurn = {
  request_id: 'r1',
  session_id: 's1',
  user_id: 'u1',
  mode: 'ally',
  task_type: 'collaboration',
  message: 'hi',
  response: 'hello',
  model: 'm',
  cached: false,
  usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
  cost_usd: 0.01,
  latency_ms: 5,
  created_at: new Date('2025-06-01T00:00:00Z'),
};

describe('turn documents', () => {
  it('keys a turn by its request id and round-trips it', () => {
    const doc = toDocument(turn);
    expect(doc._id).toBe('r1');
    expect(doc).not.toHaveProperty('request_id');
    expect(fromDocument(doc)).toEqual(turn);
  });

  it('leaves out an absent session rather than storing null, and reads null back as absent', () => {
    const { session_id: _s, ...noSession } = turn;
    const doc = toDocument({ ...noSession, session_id: undefined });
    expect(Object.keys(doc)).not.toContain('session_id');
    expect(fromDocument(doc)).not.toHaveProperty('session_id');
    expect(fromDocument({ ...doc, session_id: null as unknown as string })).not.toHaveProperty('session_id');
  });

  it('reads only the known fields back', () => {
    const doc = { ...toDocument(turn), extra: 'x', usage: { ...turn.usage, other: 1 } };
    expect(fromDocument(doc)).toEqual(turn);
  });
});

describe('history query', () => {
  it('filters by user, and by session only when one is given', () => {
    expect(historyFilter({ user_id: 'u1' })).toEqual({ user_id: 'u1' });
    expect(historyFilter({ user_id: 'u1', session_id: 's1' })).toEqual({ user_id: 'u1', session_id: 's1' });
  });

  it('sorts newest first, in the order of the history index', () => {
    expect(HISTORY_SORT).toEqual({ created_at: -1 });
    const { history } = conversationIndexes(60);
    expect(Object.keys(history.key)).toEqual(['user_id', 'session_id', 'created_at']);
  });
});

describe('indexes', () => {
  it('expire turns after the TTL', () => {
    const { history, ttl } = conversationIndexes(90 * 86_400);
    expect(history).toEqual({ key: { user_id: 1, session_id: 1, created_at: -1 }, name: 'user_session_created' });
    expect(ttl).toEqual({ key: { created_at: 1 }, name: 'created_at_ttl', expireAfterSeconds: 7_776_000 });
  });
});

describe('usage pipeline', () => {
  const cachedIs = { $eq: ['$cached', true] };

  it('groups every turn when unfiltered, cached turns adding no tokens or cost', () => {
    expect(usagePipeline()).toEqual([
      { $match: {} },
      {
        $group: {
          _id: null,
          requests: { $sum: 1 },
          cached: { $sum: { $cond: [cachedIs, 1, 0] } },
          prompt_tokens: { $sum: { $cond: [cachedIs, 0, '$usage.prompt_tokens'] } },
          completion_tokens: { $sum: { $cond: [cachedIs, 0, '$usage.completion_tokens'] } },
          cost_usd: { $sum: { $cond: [cachedIs, 0, '$cost_usd'] } },
        },
      },
      { $project: { _id: 0 } },
    ]);
  });

  it('matches the user and the time window first, so the index narrows the scan', () => {
    const since = new Date('2025-06-01T00:00:00Z');
    expect(usagePipeline({ user_id: 'u1' })[0]).toEqual({ $match: { user_id: 'u1' } });
    expect(usagePipeline({ since })[0]).toEqual({ $match: { created_at: { $gte: since } } });
    expect(usagePipeline({ user_id: 'u1', since })[0]).toEqual({ $match: { user_id: 'u1', created_at: { $gte: since } } });
  });

  it('turns no row into zeros and a row into a summary', () => {
    expect(usageFromAggregate([])).toEqual({ requests: 0, cached: 0, prompt_tokens: 0, completion_tokens: 0, cost_usd: 0 });
    const row = { requests: 3, cached: 1, prompt_tokens: 110, completion_tokens: 55, cost_usd: 0.75 };
    expect(usageFromAggregate([row])).toEqual(row);
    expect(usageFromAggregate([{ requests: 2 }])).toEqual({ requests: 2, cached: 0, prompt_tokens: 0, completion_tokens: 0, cost_usd: 0 });
  });
});

describe('the sessions aggregation', () => {
  it("matches the user's turns that have a session (the history index's prefix), groups them, newest first, limited", () => {
    const pipeline = sessionsPipeline('u1', 7);
    expect(pipeline[0]).toEqual({ $match: { user_id: 'u1', session_id: { $type: 'string' } } });
    expect(pipeline[1]).toEqual({ $sort: { created_at: 1 } });
    expect(pipeline[2]).toMatchObject({ $group: { _id: '$session_id', first_message: { $first: '$message' }, last_at: { $max: '$created_at' } } });
    expect(pipeline.at(-2)).toEqual({ $sort: { last_at: -1, _id: 1 } });
    expect(pipeline.at(-1)).toEqual({ $limit: 7 });
  });

  it('reads the groups back as summaries', () => {
    const last = new Date('2026-01-01T00:00:00Z');
    expect(sessionsFromAggregate([{ _id: 's1', turns: 2, first_message: 'hi', last_at: last }])).toEqual([
      { session_id: 's1', turns: 2, first_message: 'hi', last_at: last },
    ]);
  });
});
