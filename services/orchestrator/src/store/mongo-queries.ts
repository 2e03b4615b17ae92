import type { Document, Filter, IndexDescription, Sort } from 'mongodb';
import { emptyUsage, type ConversationTurn, type HistoryQuery, type SessionSummary, type UsageQuery, type UsageSummary } from './conversation-store.js';

/**
 * How a turn is kept in MongoDB: the request id is the `_id`, so appending a turn twice (a retried job)
 * hits the unique `_id` index instead of counting twice in the ledger.
 */
export type ConversationDocument = Omit<ConversationTurn, 'request_id'> & { _id: string };

export const HISTORY_INDEX_NAME = 'user_session_created';
export const TTL_INDEX_NAME = 'created_at_ttl';
/** `duplicate key`: the turn is stored already. */
export const DUPLICATE_KEY = 11000;
/** `IndexOptionsConflict`: an index on the same keys exists with other options (here: another TTL). */
export const INDEX_OPTIONS_CONFLICT = 85;

export function toDocument(turn: ConversationTurn): ConversationDocument {
  const { request_id, session_id, ...rest } = turn;
  // Left out rather than written as null when absent: BSON would store `undefined` as null.
  return { _id: request_id, ...rest, ...(session_id === undefined ? {} : { session_id }) };
}

export function fromDocument(doc: ConversationDocument): ConversationTurn {
  return {
    request_id: doc._id,
    ...(doc.session_id == null ? {} : { session_id: doc.session_id }),
    user_id: doc.user_id,
    mode: doc.mode,
    task_type: doc.task_type,
    message: doc.message,
    response: doc.response,
    model: doc.model,
    cached: doc.cached,
    usage: {
      prompt_tokens: doc.usage.prompt_tokens,
      completion_tokens: doc.usage.completion_tokens,
      total_tokens: doc.usage.total_tokens,
    },
    cost_usd: doc.cost_usd,
    ...(doc.usage_estimated === true ? { usage_estimated: true } : {}),
    latency_ms: doc.latency_ms,
    created_at: doc.created_at,
  };
}

/** The indexes `ensureIndexes` creates: history lookups, and expiry of old turns after `ttlSeconds`. */
export function conversationIndexes(ttlSeconds: number): { history: IndexDescription; ttl: IndexDescription } {
  return {
    history: { key: { user_id: 1, session_id: 1, created_at: -1 }, name: HISTORY_INDEX_NAME },
    ttl: { key: { created_at: 1 }, name: TTL_INDEX_NAME, expireAfterSeconds: ttlSeconds },
  };
}

export function historyFilter(q: Pick<HistoryQuery, 'user_id' | 'session_id'>): Filter<ConversationDocument> {
  return q.session_id === undefined ? { user_id: q.user_id } : { user_id: q.user_id, session_id: q.session_id };
}

/**
 * Newest first, to take the newest `limit` turns. Only `created_at`, so that for a session the history index
 * yields the order and MongoDB reads just `limit` documents (a session runs one turn at a time: no ties).
 */
export const HISTORY_SORT: Sort = { created_at: -1 };

/**
 * A user's sessions as one aggregation over the history index's prefix (`user_id`): turns in creation order,
 * grouped by session (count, first message, newest time), most recently used first.
 */
export function sessionsPipeline(userId: string, limit: number): Document[] {
  return [
    { $match: { user_id: userId, session_id: { $type: 'string' } } },
    { $sort: { created_at: 1 } },
    { $group: { _id: '$session_id', turns: { $sum: 1 }, first_message: { $first: '$message' }, last_at: { $max: '$created_at' } } },
    { $sort: { last_at: -1, _id: 1 } },
    { $limit: limit },
  ];
}

export function sessionsFromAggregate(docs: Document[]): SessionSummary[] {
  return docs.map((d) => ({
    session_id: String(d._id),
    turns: Number(d.turns),
    first_message: String(d.first_message),
    last_at: d.last_at instanceof Date ? d.last_at : new Date(String(d.last_at)),
  }));
}

/** The usage ledger as one aggregation: one group over the selected turns, cached ones adding no tokens or cost. */
export function usagePipeline(q: UsageQuery = {}): Document[] {
  const match: Document = {};
  if (q.user_id !== undefined) match.user_id = q.user_id;
  if (q.since !== undefined) match.created_at = { $gte: q.since };
  const unlessCached = (field: string) => ({ $sum: { $cond: [{ $eq: ['$cached', true] }, 0, field] } });
  return [
    { $match: match },
    {
      $group: {
        _id: null,
        requests: { $sum: 1 },
        cached: { $sum: { $cond: [{ $eq: ['$cached', true] }, 1, 0] } },
        prompt_tokens: unlessCached('$usage.prompt_tokens'),
        completion_tokens: unlessCached('$usage.completion_tokens'),
        cost_usd: unlessCached('$cost_usd'),
      },
    },
    { $project: { _id: 0 } },
  ];
}

/** The pipeline's result to a summary: no row (nothing matched) is all zeros. */
export function usageFromAggregate(rows: Document[]): UsageSummary {
  const row = rows[0];
  const sum = emptyUsage();
  if (!row) return sum;
  for (const field of Object.keys(sum) as (keyof UsageSummary)[]) sum[field] = Number(row[field] ?? 0);
  return sum;
}
