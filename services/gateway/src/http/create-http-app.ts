import express, { type Express } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from '@actionedx/shared';
import type { OrchestratorAdmin } from '../admin/orchestrator-admin.js';
import type { ChatDispatcher } from '../chat/chat-dispatcher.js';
import type { HealthCheck } from '../health/health-check.js';
import { jobRoutes, type JobRoutesDeps } from '../jobs/job-routes.js';
import type { GatewayMetrics } from '../metrics.js';
import type { WebSocketStats } from '../ws/websocket-stats.js';
import { ChatResponder } from './chat-responder.js';
import { cors } from './cors.js';
import { errorHandler, notFound } from './error-mapper.js';
import { requestContext, type RequestTracker } from './request-context.js';
import { cacheRoutes } from './routes/cache-routes.js';
import { chatRoutes } from './routes/chat-routes.js';
import { healthRoutes } from './routes/health-routes.js';
import { observabilityRoutes } from './routes/observability-routes.js';

export interface HttpAppDeps {
  dispatcher: ChatDispatcher;
  admin: OrchestratorAdmin;
  health: HealthCheck;
  websocketStats: () => WebSocketStats;
  registry: Registry;
  /** Served on /metrics after the gateway's own families (embedded mode: the orchestrator's registry). */
  alsoServe?: Registry | undefined;
  metrics: GatewayMetrics;
  logger: Logger;
  tracker: RequestTracker;
  bodyLimitBytes: number;
  /** Origins allowed to call from a browser; `*` for any. */
  corsOrigins: readonly string[];
  /** `/api/jobs`: background jobs (answering 503 jobs_unavailable without a queue Redis). */
  jobs: Omit<JobRoutesDeps, 'logger'>;
}

/** The express application: context first, then the routes, then 404 and the one error mapper. */
export function createHttpApp(deps: HttpAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Repeated keys stay arrays and nothing nests: the query is read by hand and checked.
  app.set('query parser', 'simple');
  app.use(cors(deps.corsOrigins));
  app.use(requestContext({ logger: deps.logger, metrics: deps.metrics, tracker: deps.tracker }));
  app.use(chatRoutes({ responder: new ChatResponder(deps.dispatcher), bodyLimitBytes: deps.bodyLimitBytes }));
  app.use(jobRoutes({ ...deps.jobs, logger: deps.logger }));
  app.use(cacheRoutes(deps.admin));
  app.use(healthRoutes(deps.health));
  app.use(
    observabilityRoutes({ registry: deps.registry, alsoServe: deps.alsoServe, websocketStats: deps.websocketStats }),
  );
  app.use(notFound);
  app.use(errorHandler(deps.logger));
  return app;
}
