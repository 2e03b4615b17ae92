export { assembleOrchestrator, type AssembledOrchestrator, type AssembleDeps } from './assemble.js';
export { createOrchestrator, type Orchestrator, type OrchestratorDeps } from './orchestrator.js';
export { loadOrchestratorConfig, OrchestratorEnvSchema, type OrchestratorConfig } from './config.js';
export { createResponseCache, type ResponseCacheConfig } from './cache-backend.js';
export { createOpsServer } from './http/ops-server.js';
export { ModelClient, type ModelClientOptions } from './llm/index.js';
export { TaskRegistry, type TaskProfile } from './tasks/index.js';
export type { ResponseCache } from './cache/index.js';
export { createConversationStore, type ConversationStore } from './store/index.js';
