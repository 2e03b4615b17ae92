export type { AddOutcome, CollabSession, CollabStore, MemberRole } from './collab-store.js';
export { MemoryCollabStore } from './memory-collab-store.js';
export { RedisCollabStore } from './redis-collab-store.js';
export { SessionEventSchema, type SessionEvent } from './session-events.js';
export { SessionHub, isCollabSessionId, type CollabLink, type LocalMember, type SessionHubDeps, type SessionLimits } from './session-hub.js';
export { sessionRoutes, type SessionRoutesDeps } from './session-routes.js';
export { sessionPathsDoc, sessionSchemasDoc } from './session-openapi.js';
