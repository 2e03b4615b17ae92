export { assembleOrchestrator, type AssembledOrchestrator, type AssembleDeps } from './assemble.js';
export { createOrchestrator, type Orchestrator, type OrchestratorDeps } from './orchestrator.js';
export { loadOrchestratorConfig, OrchestratorEnvSchema, type OrchestratorConfig } from './config.js';
export { createCache, type Cache, type CacheConfig } from './cache/index.js';
export { createOpsServer } from './http/ops-server.js';
export { ModelClient, PriceTable, type ModelClientOptions } from './llm/index.js';
export { TaskRegistry, type TaskProfile } from './tasks/index.js';
export { createConversationStore, type ConversationStore } from './store/index.js';
export { queueLimits } from './assemble.js';
