import { Router } from 'express';
import type { HealthCheck } from '../../health/health-check.js';

/** `/api/health` (people and dashboards), `/healthz` (liveness), `/readyz` (readiness). */
export function healthRoutes(health: HealthCheck): Router {
  const router = Router();
  router.get('/api/health', async (_req, res) => {
    const report = await health.report();
    res.status(report.status === 'unhealthy' ? 503 : 200).json(report);
  });
  // Liveness: answering at all is the proof.
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'alive' });
  });
  router.get('/readyz', (_req, res) => {
    const r = health.readiness();
    res.status(r.ready ? 200 : 503).json(r.ready ? { status: 'ready' } : { status: 'not_ready', reason: r.reason });
  });
  return router;
}
