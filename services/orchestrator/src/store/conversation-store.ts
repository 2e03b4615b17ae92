import type { Mode, TaskType, Usage } from '@actionedx/shared';

/** One answered chat turn, as the pipeline records it once the answer was sent. */
export interface ConversationTurn {
  /** Unique per request; appending the same id again is a no-op, so a retried job is recorded once. */
  request_id: string;
  session_id?: string;
  user_id: string;
  mode: Mode;
  task_type: TaskType;
  message: string;
  response: string;
  model: string;
  /** Served from the response cache: counts as a request in the ledger, adds no tokens and no cost. */
  cached: boolean;
  usage: Usage;
  cost_usd: number;
  /** The usage was counted with a tokenizer: the provider sent none. Absent when it was reported. */
  usage_estimated?: boolean;
  latency_ms: number;
  created_at: Date;
}

export interface HistoryQuery {
  user_id: string;
  /** Only this session's turns; without it, every turn of the user. */
  session_id?: string;
  /** Newest turns returned. Default 20; values above 200 are lowered to 200. */
  limit?: number;
}

export interface SessionsQuery {
  user_id: string;
  /** Sessions returned, most recently used first. Default 30; values above 100 are lowered to 100. */
  limit?: number;
}

/** One of a user's sessions, as its stored turns show it. */
export interface SessionSummary {
  session_id: string;
  /** The user's turns in it. */
  turns: number;
  /** The user's first message in it (a title). */
  first_message: string;
  /** When the newest of its turns was created. */
  last_at: Date;
}

export interface UsageQuery {
  /** Only this user's turns; without it, every user's. */
  user_id?: string;
  /** Only turns created at or after this instant. */
  since?: Date;
}

/** The usage ledger: totals over the turns a `UsageQuery` selects. */
export interface UsageSummary {
  /** Every turn, cached or not. */
  requests: number;
  /** Turns answered from the cache. */
  cached: number;
  /** Tokens and cost of the turns that called a model (cached turns excluded). */
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
}

export interface StoreHealth {
  /** `memory`: the in-process store, which has nothing to reach. */
  status: 'healthy' | 'unhealthy' | 'memory';
  /** Round trip of a ping; null when it failed. */
  latency_ms: number | null;
}

/**
 * Conversations and the usage ledger. Two implementations behave the same (one contract test suite):
 * `MongoConversationStore` for a deployment, `MemoryConversationStore` for the embedded mode and tests.
 *
 * Every operation but `health` rejects with a `StoreError` (a plain `Error`, deliberately not an `AppError`)
 * when the backend fails. A store failure must never fail a chat answer: the pipeline calls `appendTurn`
 * after the answer was sent, and only logs a rejection.
 */
export interface ConversationStore {
  readonly backend: 'mongo' | 'memory';
  /** Records a turn; a turn whose `request_id` is already stored is ignored. Rejects with `StoreError`. */
  appendTurn(turn: ConversationTurn): Promise<void>;
  /**
   * The newest `limit` turns, ordered oldest to newest (newest last). Rejects with `StoreError`, and with a
   * `RangeError` for a limit that is not a positive integer.
   */
  history(q: HistoryQuery): Promise<ConversationTurn[]>;
  /**
   * The user's sessions that have turns (turns without a session are left out), most recently used first.
   * Rejects with `StoreError`, and with a `RangeError` for a limit that is not a positive integer.
   */
  sessions(q: SessionsQuery): Promise<SessionSummary[]>;
  /** Totals of the ledger; zeros when nothing matches. Rejects with `StoreError`. */
  usage(q?: UsageQuery): Promise<UsageSummary>;
  /** Never throws. */
  health(): Promise<StoreHealth>;
  /** Releases what the store opened; later operations reject. */
  close(): Promise<void>;
}

export const DEFAULT_HISTORY_LIMIT = 20;
export const MAX_HISTORY_LIMIT = 200;
/** The collection, also the `collection` label of the `db_*` metrics. */
export const CONVERSATIONS_COLLECTION = 'conversations';

/** The limit a history query uses: the default when absent, at most `MAX_HISTORY_LIMIT`. */
export function historyLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_HISTORY_LIMIT;
  if (!Number.isSafeInteger(limit) || limit <= 0) throw new RangeError(`history limit must be a positive integer, got ${limit}`);
  return Math.min(limit, MAX_HISTORY_LIMIT);
}

export const DEFAULT_SESSIONS_LIMIT = 30;
export const MAX_SESSIONS_LIMIT = 100;

/** The limit a sessions query uses: the default when absent, at most `MAX_SESSIONS_LIMIT`. */
export function sessionsLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_SESSIONS_LIMIT;
  if (!Number.isSafeInteger(limit) || limit <= 0) throw new RangeError(`sessions limit must be a positive integer, got ${limit}`);
  return Math.min(limit, MAX_SESSIONS_LIMIT);
}

export const emptyUsage = (): UsageSummary => ({ requests: 0, cached: 0, prompt_tokens: 0, completion_tokens: 0, cost_usd: 0 });
