import { Router } from 'express';
import { AppError, UserIdSchema } from '@actionedx/shared';
import { methodNotAllowed } from '../http/error-mapper.js';
import { jsonBody } from '../http/json-body.js';
import type { ApiKeys } from './api-keys.js';
import { requireAdmin } from './http-auth.js';

/**
 * API-key management, administrators only:
 * `POST /api/admin/keys` `{user_id, role?, name?, limits?}` → 201 with the key (its secret shown this once),
 * `GET /api/admin/keys[?user_id=]` → `{keys}` (never a secret or its hash),
 * `DELETE /api/admin/keys/<id>` → the revoked key, or 404.
 */
export function adminKeyRoutes(deps: { keys: ApiKeys; bodyLimitBytes: number; jsonMaxDepth: number }): Router {
  const router = Router();
  router
    .route('/api/admin/keys')
    .post(requireAdmin, ...jsonBody(deps.bodyLimitBytes, deps.jsonMaxDepth), async (req, res) => {
      res.status(201).json(await deps.keys.create(req.body));
    })
    .get(requireAdmin, async (req, res) => {
      const raw = req.query.user_id;
      if (raw !== undefined && !UserIdSchema.safeParse(raw).success) {
        throw new AppError('validation_failed', 'user_id: letters, digits and _ . : @ - (at most 128).', { details: { field: 'user_id' } });
      }
      res.json({ keys: await deps.keys.list({ user_id: raw as string | undefined }) });
    })
    .all(methodNotAllowed('GET', 'POST'));
  router
    .route('/api/admin/keys/:id')
    .delete(requireAdmin, async (req, res) => {
      const revoked = await deps.keys.revoke(String(req.params.id));
      if (revoked === undefined) throw new AppError('not_found', 'No such API key.');
      res.json(revoked);
    })
    .all(methodNotAllowed('DELETE'));
  return router;
}
