import type { DbMetrics, Logger } from '@actionedx/shared';
import type { ConversationStore } from './conversation-store.js';
import { MemoryConversationStore } from './memory-conversation-store.js';
import type { MongoClientOptions } from './mongo-client.js';
import { MongoConversationStore } from './mongo-conversation-store.js';

export interface ConversationStoreConfig {
  /** MongoDB shared by every replica; without it the store lives in this process's memory. */
  mongoUrl?: string | undefined;
  /** Database holding the `conversations` collection. Default `actionedx`. */
  dbName?: string | undefined;
  metrics: DbMetrics;
  logger: Logger;
  /** MongoDB only: turns expire after this many days. Default 90. */
  ttlDays?: number | undefined;
  /** Memory only: most turns held. Default 10 000. */
  maxTurns?: number | undefined;
  /** Memory only: most bytes held (estimated). Default 32 MiB. */
  maxBytes?: number | undefined;
  /** MongoDB only: client settings (server-selection timeout 2 s by default). */
  client?: MongoClientOptions;
}

export const DEFAULT_DB_NAME = 'actionedx';

/**
 * The one place that picks the conversation store. With a URL it connects to MongoDB and rejects with a
 * `StoreError` when no server answers at start (a misconfigured URL shows at once, not as lost history);
 * without one it says so and keeps turns in memory.
 */
export async function createConversationStore(cfg: ConversationStoreConfig): Promise<ConversationStore> {
  const logger = cfg.logger.child({ component: 'store' });
  if (cfg.mongoUrl) {
    return MongoConversationStore.connect(
      cfg.mongoUrl,
      cfg.dbName ?? DEFAULT_DB_NAME,
      { metrics: cfg.metrics, logger },
      { ...cfg.client, ...(cfg.ttlDays === undefined ? {} : { ttlDays: cfg.ttlDays }) },
    );
  }
  const store = new MemoryConversationStore(
    { metrics: cfg.metrics },
    {
      ...(cfg.maxTurns === undefined ? {} : { maxTurns: cfg.maxTurns }),
      ...(cfg.maxBytes === undefined ? {} : { maxBytes: cfg.maxBytes }),
    },
  );
  logger.info({ max_turns: store.maxTurns, max_bytes: store.maxBytes }, 'no MONGO_URL: conversations are kept in memory and lost on restart');
  return store;
}
