import type { DbMetrics } from '@actionedx/shared';
import {
  CONVERSATIONS_COLLECTION,
  emptyUsage,
  historyLimit,
  sessionsLimit,
  type ConversationStore,
  type ConversationTurn,
  type HistoryQuery,
  type SessionsQuery,
  type SessionSummary,
  type StoreHealth,
  type UsageQuery,
  type UsageSummary,
} from './conversation-store.js';
import { StoreInstrumentation } from './store-instrumentation.js';

export interface MemoryConversationStoreDeps {
  metrics: DbMetrics;
}

export interface MemoryConversationStoreOptions {
  /** Most turns held across all users; the oldest appended is dropped first. Default 10 000. */
  maxTurns?: number;
  /**
   * Most bytes held across all users (`turnBytes`: the turn's strings at two bytes a character, and a fixed
   * overhead); the oldest go first. Default 32 MiB: 10 000 turns of 16,000-character messages would be ~320 MB.
   */
  maxBytes?: number;
}

/** What one stored turn is counted as: its strings at two bytes a character (V8 may use one), and its object. */
const TURN_OVERHEAD_BYTES = 400;
export const turnBytes = (t: ConversationTurn): number =>
  TURN_OVERHEAD_BYTES + 2 * (t.message.length + t.response.length + t.request_id.length + t.user_id.length + (t.session_id?.length ?? 0) + t.model.length);

/**
 * The conversation store inside one process (embedded mode, tests): bounded, lost on restart. Turns are
 * copied in and out, so a caller can never change a stored turn by mutating what it passed or got.
 */
export class MemoryConversationStore implements ConversationStore {
  readonly backend = 'memory';
  readonly maxTurns: number;
  readonly maxBytes: number;
  private held = 0;
  private readonly instrumentation: StoreInstrumentation;
  /** Every turn in the order appended; `order[head]` is the oldest still held. */
  private order: Array<ConversationTurn | undefined> = [];
  private head = 0;
  private readonly byUser = new Map<string, ConversationTurn[]>();
  private readonly requestIds = new Set<string>();
  private closed = false;

  constructor(deps: MemoryConversationStoreDeps, opts: MemoryConversationStoreOptions = {}) {
    this.maxTurns = opts.maxTurns ?? 10_000;
    if (!Number.isSafeInteger(this.maxTurns) || this.maxTurns <= 0) {
      throw new RangeError(`maxTurns must be a positive integer, got ${this.maxTurns}`);
    }
    this.maxBytes = opts.maxBytes ?? 32 * 1024 * 1024;
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes <= 0) {
      throw new RangeError(`maxBytes must be a positive integer, got ${this.maxBytes}`);
    }
    this.instrumentation = new StoreInstrumentation(deps.metrics, CONVERSATIONS_COLLECTION);
  }

  /** Turns held now. */
  get size(): number {
    return this.order.length - this.head;
  }

  /** Bytes held now, as `turnBytes` counts them. */
  get bytes(): number {
    return this.held;
  }

  appendTurn(turn: ConversationTurn): Promise<void> {
    return this.instrumentation.measure('append', () => {
      this.assertOpen();
      if (this.requestIds.has(turn.request_id)) return;
      const stored = copyTurn(turn);
      this.order.push(stored);
      this.requestIds.add(stored.request_id);
      const turns = this.byUser.get(stored.user_id);
      if (turns) turns.push(stored);
      else this.byUser.set(stored.user_id, [stored]);
      this.held += turnBytes(stored);
      // The newest turn stays even alone over the byte bound (a turn is bounded by the request limits).
      while (this.size > this.maxTurns || (this.held > this.maxBytes && this.size > 1)) this.dropOldest();
    });
  }

  async history(q: HistoryQuery): Promise<ConversationTurn[]> {
    const limit = historyLimit(q.limit);
    return this.instrumentation.measure('history', () => {
      this.assertOpen();
      const turns = (this.byUser.get(q.user_id) ?? []).filter(
        (t) => q.session_id === undefined || t.session_id === q.session_id,
      );
      // Appends may arrive out of order (concurrent requests); the stable sort keeps append order on ties.
      turns.sort((a, b) => a.created_at.getTime() - b.created_at.getTime());
      return turns.slice(-limit).map(copyTurn);
    });
  }

  async sessions(q: SessionsQuery): Promise<SessionSummary[]> {
    const limit = sessionsLimit(q.limit);
    return this.instrumentation.measure('sessions', () => {
      this.assertOpen();
      const bySession = new Map<string, SessionSummary & { first_at: number }>();
      for (const t of this.byUser.get(q.user_id) ?? []) {
        if (t.session_id === undefined) continue;
        const at = t.created_at.getTime();
        const s = bySession.get(t.session_id);
        if (s === undefined) {
          bySession.set(t.session_id, { session_id: t.session_id, turns: 1, first_message: t.message, last_at: t.created_at, first_at: at });
          continue;
        }
        s.turns++;
        if (at < s.first_at) Object.assign(s, { first_at: at, first_message: t.message });
        if (at > s.last_at.getTime()) s.last_at = t.created_at;
      }
      return [...bySession.values()]
        .sort((a, b) => b.last_at.getTime() - a.last_at.getTime())
        .slice(0, limit)
        .map(({ first_at: _first, last_at, ...rest }) => ({ ...rest, last_at: new Date(last_at.getTime()) }));
    });
  }

  usage(q: UsageQuery = {}): Promise<UsageSummary> {
    return this.instrumentation.measure('usage', () => {
      this.assertOpen();
      // Every slot from `head` on holds a turn (only dropped ones are emptied).
      const turns = q.user_id === undefined ? (this.order.slice(this.head) as ConversationTurn[]) : (this.byUser.get(q.user_id) ?? []);
      const since = q.since?.getTime();
      const sum = emptyUsage();
      for (const t of turns) {
        if (since !== undefined && t.created_at.getTime() < since) continue;
        sum.requests++;
        if (t.cached) {
          sum.cached++;
          continue;
        }
        sum.prompt_tokens += t.usage.prompt_tokens;
        sum.completion_tokens += t.usage.completion_tokens;
        sum.cost_usd += t.cost_usd;
      }
      return sum;
    });
  }

  health(): Promise<StoreHealth> {
    return this.instrumentation
      .measure('health', () => {
        this.assertOpen();
        return { status: 'memory', latency_ms: 0 } as const;
      })
      .catch(() => ({ status: 'unhealthy', latency_ms: null }) as const);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.order = [];
    this.head = 0;
    this.held = 0;
    this.byUser.clear();
    this.requestIds.clear();
  }

  private dropOldest(): void {
    const oldest = this.order[this.head];
    if (!oldest) return;
    // The slot lets go of the turn at once: what is dropped for the byte bound is freed.
    this.order[this.head] = undefined;
    this.head++;
    this.held -= turnBytes(oldest);
    this.requestIds.delete(oldest.request_id);
    const turns = this.byUser.get(oldest.user_id);
    // A user's turns are in append order too, so the oldest overall is the first of its user's.
    turns?.shift();
    if (turns?.length === 0) this.byUser.delete(oldest.user_id);
    // Compact now and then rather than shifting a 10 000-element array on every append.
    if (this.head >= 1_024 && this.head >= this.size) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the store is closed');
  }
}

function copyTurn(t: ConversationTurn): ConversationTurn {
  const { session_id, ...rest } = t;
  return {
    ...rest,
    ...(session_id === undefined ? {} : { session_id }),
    usage: { ...t.usage },
    created_at: new Date(t.created_at.getTime()),
  };
}
