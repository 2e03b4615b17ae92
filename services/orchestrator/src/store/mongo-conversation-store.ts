import { MongoServerError, type Collection, type MongoClient } from 'mongodb';
import type { DbMetrics, Logger } from '@actionedx/shared';
import {
  CONVERSATIONS_COLLECTION,
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
import { createMongoClient, type MongoClientOptions } from './mongo-client.js';
import {
  DUPLICATE_KEY,
  HISTORY_SORT,
  INDEX_OPTIONS_CONFLICT,
  TTL_INDEX_NAME,
  conversationIndexes,
  fromDocument,
  historyFilter,
  sessionsFromAggregate,
  sessionsPipeline,
  toDocument,
  usageFromAggregate,
  usagePipeline,
  type ConversationDocument,
} from './mongo-queries.js';
import { StoreError } from './store-error.js';
import { StoreInstrumentation } from './store-instrumentation.js';

export interface MongoConversationStoreDeps {
  /** A client from `createMongoClient`; the driver connects it on first use if it is not yet. */
  client: MongoClient;
  dbName: string;
  metrics: DbMetrics;
  logger: Logger;
}

export interface MongoConversationStoreOptions {
  /** Turns older than this are deleted by MongoDB's TTL monitor (which runs about once a minute). Default 90 days. */
  ttlDays?: number;
  /** Close the client in `close()`. Default false: the client belongs to whoever created it. */
  closeClient?: boolean;
}

export type MongoConnectOptions = MongoClientOptions & Omit<MongoConversationStoreOptions, 'closeClient'>;

const DAY_SECONDS = 86_400;

/** Conversations and the usage ledger in MongoDB's `conversations` collection, shared by every replica. */
export class MongoConversationStore implements ConversationStore {
  readonly backend = 'mongo';
  /** `expireAfterSeconds` of the TTL index. */
  readonly ttlSeconds: number;
  private readonly collection: Collection<ConversationDocument>;
  private readonly instrumentation: StoreInstrumentation;
  private closed = false;

  /**
   * Connects with the house client (`createMongoClient`), creates the indexes, and returns a store that
   * owns the client. Rejects with a `StoreError` (operation `connect`) for a malformed URL, or when no server
   * answers within the server-selection timeout (default 2 s); the log never shows the URL, which may hold a password.
   */
  static async connect(
    url: string,
    dbName: string,
    deps: { metrics: DbMetrics; logger: Logger },
    opts: MongoConnectOptions = {},
  ): Promise<MongoConversationStore> {
    let client: MongoClient | undefined;
    try {
      client = createMongoClient(url, opts);
      await client.connect();
      const store = new MongoConversationStore({ ...deps, client, dbName }, { ...opts, closeClient: true });
      await store.ensureIndexes();
      deps.logger.info({ db: dbName, ttl_days: store.ttlSeconds / DAY_SECONDS }, 'conversation store connected to MongoDB');
      return store;
    } catch (err) {
      await client?.close().catch(() => {});
      throw err instanceof StoreError ? err : new StoreError('connect', CONVERSATIONS_COLLECTION, err);
    }
  }

  constructor(
    private readonly deps: MongoConversationStoreDeps,
    private readonly opts: MongoConversationStoreOptions = {},
  ) {
    const ttlDays = opts.ttlDays ?? 90;
    this.ttlSeconds = Math.round(ttlDays * DAY_SECONDS);
    if (!Number.isFinite(ttlDays) || this.ttlSeconds <= 0) throw new RangeError(`ttlDays must be positive, got ${ttlDays}`);
    this.collection = deps.client.db(deps.dbName).collection<ConversationDocument>(CONVERSATIONS_COLLECTION);
    this.instrumentation = new StoreInstrumentation(deps.metrics, CONVERSATIONS_COLLECTION);
  }

  /**
   * Creates the history index and the TTL index; a TTL index left by an earlier setting is changed in place
   * (`collMod`). `connect` calls it once; call it yourself when constructing the store around your own client.
   */
  async ensureIndexes(): Promise<void> {
    const { history, ttl } = conversationIndexes(this.ttlSeconds);
    await this.collection.createIndexes([history]);
    try {
      await this.collection.createIndexes([ttl]);
    } catch (err) {
      if (!(err instanceof MongoServerError && err.code === INDEX_OPTIONS_CONFLICT)) throw err;
      await this.collection.db.command({
        collMod: CONVERSATIONS_COLLECTION,
        index: { keyPattern: ttl.key, expireAfterSeconds: this.ttlSeconds },
      });
      this.deps.logger.info({ index: TTL_INDEX_NAME, ttl_seconds: this.ttlSeconds }, 'conversation TTL changed');
    }
  }

  appendTurn(turn: ConversationTurn): Promise<void> {
    return this.instrumentation.measure('append', async () => {
      this.assertOpen();
      try {
        await this.collection.insertOne(toDocument(turn));
      } catch (err) {
        // Already stored (a retried job): the ledger must count it once.
        if (err instanceof MongoServerError && err.code === DUPLICATE_KEY) return;
        throw err;
      }
    });
  }

  async history(q: HistoryQuery): Promise<ConversationTurn[]> {
    const limit = historyLimit(q.limit);
    return this.instrumentation.measure('history', async () => {
      this.assertOpen();
      const docs = await this.collection.find(historyFilter(q)).sort(HISTORY_SORT).limit(limit).toArray();
      return docs.reverse().map(fromDocument);
    });
  }

  async sessions(q: SessionsQuery): Promise<SessionSummary[]> {
    const limit = sessionsLimit(q.limit);
    return this.instrumentation.measure('sessions', async () => {
      this.assertOpen();
      return sessionsFromAggregate(await this.collection.aggregate(sessionsPipeline(q.user_id, limit)).toArray());
    });
  }

  usage(q: UsageQuery = {}): Promise<UsageSummary> {
    return this.instrumentation.measure('usage', async () => {
      this.assertOpen();
      return usageFromAggregate(await this.collection.aggregate(usagePipeline(q)).toArray());
    });
  }

  /** A `ping`; unhealthy (latency null) when no server answers within the server-selection timeout. */
  async health(): Promise<StoreHealth> {
    try {
      return await this.instrumentation.measure('health', async () => {
        this.assertOpen();
        const started = performance.now();
        await this.collection.db.command({ ping: 1 });
        return { status: 'healthy', latency_ms: Math.round((performance.now() - started) * 100) / 100 } as const;
      });
    } catch {
      return { status: 'unhealthy', latency_ms: null };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.opts.closeClient) await this.deps.client.close();
  }

  private assertOpen(): void {
    // The driver would quietly reconnect a closed client; a closed store stays closed.
    if (this.closed) throw new Error('the store is closed');
  }
}
