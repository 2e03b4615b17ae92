export { createGateway, type Gateway, type GatewayDeps } from './app.js';
export { loadGatewayConfig, GatewayEnvSchema, type GatewayConfig } from './config.js';
export { createGatewayMetrics, type GatewayMetrics } from './metrics.js';
export * from './auth/index.js';
export * from './admission/index.js';
export { GATEWAY_VERSION } from './version.js';
export {
  ChatDispatcher,
  toChatResponse,
  type ChatDispatcherOptions,
  type ChatOutcome,
  type DispatchContext,
  type DispatchListener,
  type DispatchOptions,
} from './chat/index.js';
export {
  MemorySessionStore,
  RedisSessionStore,
  type SessionMetadata,
  type SessionStore,
  type WebSocketStats,
} from './ws/index.js';
export type { HealthReport, HealthStatus } from './health/health-check.js';
export { openJobDesk, JobDesk, JobPushHub, callerOf, type OpenedJobDesk } from './jobs/index.js';
export { JetStreamAnswerLog, MemoryAnswerLog, ResumeDesk, type AnswerLog, type AnswerRecord } from './resume/index.js';
