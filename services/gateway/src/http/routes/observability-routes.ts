import { Router, type RequestHandler } from 'express';
import type { Registry } from 'prom-client';
import type { WebSocketStats } from '../../ws/websocket-stats.js';
import { buildAsyncApi } from '../asyncapi.js';
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

/** `/api/metrics` and `/metrics` (Prometheus text), `/api/websocket/stats`, `/api/openapi.json`, `/api/asyncapi.json`. */
export function observabilityRoutes(deps: {
  registry: Registry;
  alsoServe?: Registry | undefined;
  websocketStats: () => WebSocketStats;
}): Router {
  const router = Router();
  const metrics: RequestHandler = async (_req, res) => {
    const body = await exposition(deps.registry, deps.alsoServe);
    res.type(deps.registry.contentType).send(body);
  };
  router.get('/api/metrics', metrics);
  router.get('/metrics', metrics);
  router.get('/api/websocket/stats', (_req, res) => {
    res.json(deps.websocketStats());
  });
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
