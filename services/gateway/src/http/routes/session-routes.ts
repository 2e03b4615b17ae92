import { Router } from 'express';
import { AppError, HISTORY_DEFAULT_TURNS, HISTORY_MAX_TURNS, SessionIdSchema } from '@actionedx/shared';
import type { OrchestratorAdmin } from '../../admin/orchestrator-admin.js';
import { userIdOf } from '../../auth/principal.js';
import { methodNotAllowed } from '../error-mapper.js';
import { contextOf } from '../request-context.js';

/** `?limit=`: a whole number from 1 to HISTORY_MAX_TURNS, HISTORY_DEFAULT_TURNS when absent. */
export function parseHistoryLimit(raw: unknown): number {
  if (raw === undefined) return HISTORY_DEFAULT_TURNS;
  const n = typeof raw === 'string' && /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= HISTORY_MAX_TURNS)) {
    throw new AppError('validation_failed', `limit: a whole number from 1 to ${HISTORY_MAX_TURNS}.`, { details: { field: 'limit' } });
  }
  return n;
}

/**
 * `GET /api/sessions/{session_id}/history`: the caller's own turns of a session (newest `limit`, oldest first),
 * from the conversation store through any orchestrator. Another user's turns are never read: the query is the
 * caller's user id, as authenticated (or named, in open mode).
 */
export function sessionRoutes(admin: OrchestratorAdmin): Router {
  const router = Router();
  router
    .route('/api/sessions/:session_id/history')
    .get(async (req, res) => {
      const user = userIdOf(req, res);
      const session = SessionIdSchema.safeParse(req.params.session_id);
      if (!session.success) {
        throw new AppError('validation_failed', 'session_id may only hold letters, digits and _ . : @ - (at most 128).', { details: { field: 'session_id' } });
      }
      const limit = parseHistoryLimit(req.query.limit);
      res.json(await admin.sessionHistory({ user_id: user, session_id: session.data, limit }, contextOf(res)));
    })
    .all(methodNotAllowed('GET'));
  return router;
}
