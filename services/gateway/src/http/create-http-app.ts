import express, { type Express } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from '@actionedx/shared';
import type { OrchestratorAdmin } from '../admin/orchestrator-admin.js';
import type { Admission } from '../admission/admission.js';
import { adminKeyRoutes } from '../auth/admin-key-routes.js';
import type { ApiKeys } from '../auth/api-keys.js';
import type { Authenticator } from '../auth/authenticator.js';
import { authenticate } from '../auth/http-auth.js';
import type { Principal } from '../auth/principal.js';
import type { ChatDispatcher } from '../chat/chat-dispatcher.js';
import type { HealthCheck } from '../health/health-check.js';
import type { ResumeDesk } from '../resume/resume-desk.js';
import { streamResumeRoutes } from '../resume/sse-resume.js';
import { jobRoutes, type JobRoutesDeps } from '../jobs/job-routes.js';
import type { GatewayMetrics } from '../metrics.js';
import { ModelCatalog, openAiRoutes } from '../openai-compat/index.js';
import type { SessionHub } from '../sessions/session-hub.js';
import { sessionRoutes } from '../sessions/session-routes.js';
import type { WebSocketStats } from '../ws/websocket-stats.js';
import { ChatResponder } from './chat-responder.js';
import { cors } from './cors.js';
import { errorHandler, notFound } from './error-mapper.js';
import { requestContext, type RequestTracker } from './request-context.js';
import { breakerRoutes } from './routes/breaker-routes.js';
import { cacheRoutes } from './routes/cache-routes.js';
import { chatRoutes } from './routes/chat-routes.js';
import { healthRoutes } from './routes/health-routes.js';
import { conversationRoutes } from './routes/session-routes.js';
import { apiDocumentRoutes, observabilityRoutes } from './routes/observability-routes.js';
import { securityHeaders } from './security-headers.js';
import { webPageRoutes } from '../web/web-page.js';

export interface HttpAppDeps {
  dispatcher: ChatDispatcher;
  admin: OrchestratorAdmin;
  health: HealthCheck;
  websocketStats: (viewer: Principal) => WebSocketStats;
  registry: Registry;
  /** Served on /api/metrics after the gateway's own families (embedded mode: the orchestrator's registry). */
  alsoServe?: Registry | undefined;
  metrics: GatewayMetrics;
  logger: Logger;
  tracker: RequestTracker;
  authenticator: Authenticator;
  apiKeys: ApiKeys;
  admission: Admission;
  bodyLimitBytes: number;
  jsonMaxDepth: number;
  /** Origins allowed to call from a browser; `*` for any. */
  corsOrigins: readonly string[];
  /** `/api/jobs`: background jobs (answering 503 jobs_unavailable without a queue Redis). */
  jobs: Omit<JobRoutesDeps, 'logger'>;
  /** Streamed answers retained for resuming (`GET /api/assistant/streams/{id}`). */
  resumes?: ResumeDesk | undefined;
  /** `/api/sessions`: collaboration sessions. */
  sessions: SessionHub;
}

/**
 * The public express application: security headers, CORS and context first; health, the API documents and
 * the web page for anyone; then authentication (everything after it has a `Principal`), the routes, 404 and the one
 * error mapper. Prometheus scrapes `/metrics` on the ops port, never here.
 */
export function createHttpApp(deps: HttpAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Repeated keys stay arrays and nothing nests: the query is read by hand and checked.
  app.set('query parser', 'simple');
  app.use(...securityHeaders());
  app.use(cors(deps.corsOrigins));
  app.use(requestContext({ logger: deps.logger, metrics: deps.metrics, tracker: deps.tracker }));
  app.use(healthRoutes(deps.health, { detail: 'public' }));
  app.use(apiDocumentRoutes());
  app.use(webPageRoutes());
  // The OpenAI-compatible API authenticates per route and answers every error in OpenAI's shape.
  app.use(
    openAiRoutes({
      dispatcher: deps.dispatcher,
      admission: deps.admission,
      authenticator: deps.authenticator,
      catalog: new ModelCatalog(deps.admin),
      logger: deps.logger,
      bodyLimitBytes: deps.bodyLimitBytes,
      jsonMaxDepth: deps.jsonMaxDepth,
    }),
  );
  app.use(authenticate(deps.authenticator));
  app.use(
    chatRoutes({
      responder: new ChatResponder(deps.dispatcher, deps.admission, deps.resumes),
      bodyLimitBytes: deps.bodyLimitBytes,
      jsonMaxDepth: deps.jsonMaxDepth,
    }),
  );
  app.use(streamResumeRoutes(deps.resumes));
  app.use(jobRoutes({ ...deps.jobs, logger: deps.logger }));
  // GET /api/sessions (the caller's conversations) before the collaboration routes' POST /api/sessions.
  app.use(conversationRoutes(deps.admin));
  app.use(sessionRoutes({ hub: deps.sessions, bodyLimitBytes: deps.bodyLimitBytes, jsonMaxDepth: deps.jsonMaxDepth, logger: deps.logger }));
  app.use(cacheRoutes(deps.admin));
  app.use(breakerRoutes(deps.admin));
  app.use(adminKeyRoutes({ keys: deps.apiKeys, bodyLimitBytes: deps.bodyLimitBytes, jsonMaxDepth: deps.jsonMaxDepth }));
  app.use(
    observabilityRoutes({ registry: deps.registry, alsoServe: deps.alsoServe, websocketStats: deps.websocketStats }),
  );
  app.use(notFound);
  app.use(errorHandler(deps.logger));
  return app;
}
