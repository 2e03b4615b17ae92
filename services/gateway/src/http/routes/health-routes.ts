import { Router } from 'express';
import type { HealthCheck, HealthReport } from '../../health/health-check.js';

/**
 * What the public port tells anyone: statuses and latencies, no worker ids (they carry host names) and
 * nothing else about the machines. The ops port's `/api/health` has the full report.
 */
export function publicHealthReport(report: HealthReport): HealthReport {
  const { worker_id: _worker, in_flight: _inFlight, ...orchestrators } = report.dependencies.orchestrators;
  return { ...report, dependencies: { ...report.dependencies, orchestrators } };
}

/** `/api/health` (people and dashboards), `/healthz` (liveness), `/readyz` (readiness). */
export function healthRoutes(health: HealthCheck, opts: { detail: 'public' | 'full' } = { detail: 'public' }): Router {
  const router = Router();
  router.get('/api/health', async (_req, res) => {
    const report = await health.report();
    res.status(report.status === 'unhealthy' ? 503 : 200).json(opts.detail === 'full' ? report : publicHealthReport(report));
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
