import express, { type Express } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from '@actionedx/shared';
import type { HealthCheck } from '../health/health-check.js';
import { errorHandler, notFound } from '../http/error-mapper.js';
import { healthRoutes } from '../http/routes/health-routes.js';
import { metricsHandler } from '../http/routes/observability-routes.js';
import { securityHeaders } from '../http/security-headers.js';

/**
 * The operations listener (OPS_PORT): `/metrics` for Prometheus, `/healthz` and `/readyz` for probes,
 * `/api/health` with every detail. For the cluster's network only: never published, never the public port.
 */
export function createOpsApp(deps: { health: HealthCheck; registry: Registry; alsoServe?: Registry | undefined; logger: Logger }): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(...securityHeaders());
  app.use(healthRoutes(deps.health, { detail: 'full' }));
  app.get('/metrics', metricsHandler(deps.registry, deps.alsoServe));
  app.use(notFound);
  app.use(errorHandler(deps.logger));
  return app;
}
