export { AssistantSocketServer, type AssistantSocketServerDeps } from './assistant-socket-server.js';
export { AssistantConnection } from './assistant-connection.js';
export { parseClientMessage } from './client-messages.js';
export { toErrorFrame } from './error-frame.js';
export { MemorySessionStore } from './memory-session-store.js';
export { RedisSessionStore } from './redis-session-store.js';
export { SessionMetadataSchema, sessionKey, type SessionMetadata, type SessionStore } from './session-store.js';
export { parseSocketTarget, type SocketTarget } from './socket-target.js';
export type { WebSocketStats } from './websocket-stats.js';
