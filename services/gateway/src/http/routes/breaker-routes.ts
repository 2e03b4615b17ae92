import { Router } from 'express';
import type { OrchestratorAdmin } from '../../admin/orchestrator-admin.js';
import { requireAdmin } from '../../auth/http-auth.js';
import { methodNotAllowed } from '../error-mapper.js';
import { contextOf } from '../request-context.js';

/**
 * `GET /api/admin/breakers` (administrators): the model targets' circuit breakers as one orchestrator sees them.
 * Each replica keeps its own (Prometheus has every replica's, `ai_target_breaker_state`); the worker's id is left
 * out, as it carries a host name.
 */
export function breakerRoutes(admin: OrchestratorAdmin): Router {
  const router = Router();
  router
    .route('/api/admin/breakers')
    .get(requireAdmin, async (_req, res) => {
      const { model_targets } = await admin.breakers(contextOf(res));
      res.json({ model_targets, scope: 'one orchestrator replica' });
    })
    .all(methodNotAllowed('GET'));
  return router;
}
