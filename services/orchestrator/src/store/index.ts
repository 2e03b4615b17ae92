export {
  CONVERSATIONS_COLLECTION,
  DEFAULT_HISTORY_LIMIT,
  MAX_HISTORY_LIMIT,
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
export { StoreError, type StoreOperation } from './store-error.js';
export { StoreInstrumentation, type MeasuredOperation } from './store-instrumentation.js';
export {
  MemoryConversationStore,
  type MemoryConversationStoreDeps,
  type MemoryConversationStoreOptions,
} from './memory-conversation-store.js';
export { createMongoClient, type MongoClientOptions } from './mongo-client.js';
export {
  MongoConversationStore,
  type MongoConnectOptions,
  type MongoConversationStoreDeps,
  type MongoConversationStoreOptions,
} from './mongo-conversation-store.js';
export { createConversationStore, DEFAULT_DB_NAME, type ConversationStoreConfig } from './create-conversation-store.js';
export { registerHistoryAdmin, toSessionTurn } from './history-admin.js';
