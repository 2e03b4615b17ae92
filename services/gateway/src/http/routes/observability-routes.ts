import { Router, type RequestHandler } from 'express';
import type { Registry } from 'prom-client';
import { requireAdmin } from '../../auth/http-auth.js';
import { principalOf, type Principal } from '../../auth/principal.js';
import type { WebSocketStats } from '../../ws/websocket-stats.js';
import { buildAsyncApi } from '../asyncapi.js';
import { methodNotAllowed } from '../error-mapper.js';
import { buildOpenApi } from '../openapi.js';

/**
 * The gateway's registry, then the families of `also` it does not have, each rendered by its own registry
 * (so its default labels, e.g. `service="orchestrator"`, stay).
 */
async function exposition(own: Registry, also: Registry | undefined): Promise<string> {
  const text = await own.metrics();
  if (also === undefined || also === own) return text;
  const parts = [text.trimEnd()];
  for (const metric of also.getMetricsAsArray()) {
    if (own.getSingleMetric(metric.name) !== undefined) continue;
    parts.push((await also.getSingleMetricAsString(metric.name)).trimEnd());
  }
  return `${parts.join('\n\n')}\n`;
}

/** Prometheus text of `registry` (and the families of `alsoServe` it lacks). */
export function metricsHandler(registry: Registry, alsoServe: Registry | undefined): RequestHandler {
  return async (_req, res) => {
    const body = await exposition(registry, alsoServe);
    res.type(registry.contentType).send(body);
  };
}

/** `/api/openapi.json` and `/api/asyncapi.json`: public, like any API's documentation. */
export function apiDocumentRoutes(): Router {
  const router = Router();
  // Built once: the schemas do not change while the process runs.
  const openApi = buildOpenApi();
  const asyncApi = buildAsyncApi();
  router.get('/api/openapi.json', (_req, res) => {
    res.json(openApi);
  });
  router.get('/api/asyncapi.json', (_req, res) => {
    res.json(asyncApi);
  });
  return router;
}

/**
 * `/api/metrics` (Prometheus text, administrators only: the scrape endpoint is `/metrics` on the ops port)
 * and `/api/websocket/stats` (counts for anyone signed in; the sessions, with their users, for administrators).
 */
export function observabilityRoutes(deps: {
  registry: Registry;
  alsoServe?: Registry | undefined;
  websocketStats: (viewer: Principal) => WebSocketStats;
}): Router {
  const router = Router();
  router.route('/api/metrics').get(requireAdmin, metricsHandler(deps.registry, deps.alsoServe)).all(methodNotAllowed('GET'));
  router.get('/api/websocket/stats', (_req, res) => {
    res.json(deps.websocketStats(principalOf(res)));
  });
  return router;
}
