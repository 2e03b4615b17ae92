import { Router } from 'express';
import { AppError, HISTORY_DEFAULT_TURNS, HISTORY_MAX_TURNS, SESSIONS_DEFAULT, SESSIONS_MAX, SessionIdSchema } from '@actionedx/shared';
import type { OrchestratorAdmin } from '../../admin/orchestrator-admin.js';
import { userIdOf } from '../../auth/principal.js';
import { methodNotAllowed } from '../error-mapper.js';
import { contextOf } from '../request-context.js';

/** `?limit=`: a whole number from 1 to `max`, `fallback` when absent. */
export function parseLimit(raw: unknown, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = typeof raw === 'string' && /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= max)) {
    throw new AppError('validation_failed', `limit: a whole number from 1 to ${max}.`, { details: { field: 'limit' } });
  }
  return n;
}

/** A history's `?limit=`: 1 to HISTORY_MAX_TURNS, HISTORY_DEFAULT_TURNS when absent. */
export const parseHistoryLimit = (raw: unknown): number => parseLimit(raw, HISTORY_DEFAULT_TURNS, HISTORY_MAX_TURNS);

/**
 * `GET /api/sessions`: the caller's sessions that have turns, most recently used first; and
 * `GET /api/sessions/{session_id}/history`: the caller's own turns of a session (newest `limit`, oldest first),
 * from the conversation store through any orchestrator. Another user's turns are never read: the query is the
 * caller's user id, as authenticated (or named, in open mode).
 */
export function conversationRoutes(admin: OrchestratorAdmin): Router {
  const router = Router();
  router
    .route('/api/sessions')
    .get(async (req, res) => {
      const user = userIdOf(req, res);
      const limit = parseLimit(req.query.limit, SESSIONS_DEFAULT, SESSIONS_MAX);
      res.json(await admin.sessions({ user_id: user, limit }, contextOf(res)));
    });
  // No 405 catch-all on /api/sessions: its POST (a shared session) belongs to the collaboration routes.
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
