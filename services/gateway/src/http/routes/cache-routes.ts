import { Router } from 'express';
import {
  AppError,
  CACHE_KEY_PREFIX,
  CacheInvalidateRequestSchema,
  TASK_TYPES,
  parseCachePattern,
  type CacheInvalidateRequest,
} from '@actionedx/shared';
import type { OrchestratorAdmin } from '../../admin/orchestrator-admin.js';
import { requireAdmin } from '../../auth/http-auth.js';
import { parseOrThrow } from '../../chat/request-validation.js';
import { methodNotAllowed } from '../error-mapper.js';
import { contextOf } from '../request-context.js';

function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  throw new AppError('validation_failed', `${name} must be given once.`, { details: { field: name } });
}

/**
 * `?pattern=...&task_type=...` as the orchestrators' invalidate request. The pattern is checked here with the
 * rules the workers apply (`parseCachePattern`), so a bad one never costs a bus round trip, and `*` (the
 * seed's call) is sent as `ai_cache:*`.
 */
export function parseInvalidateQuery(query: Record<string, unknown>): CacheInvalidateRequest {
  const pattern = single(query.pattern, 'pattern');
  const taskType = single(query.task_type, 'task_type');
  if (pattern === undefined && taskType === undefined) {
    throw new AppError('validation_failed', `Give a pattern (${CACHE_KEY_PREFIX}:...) or a task_type.`);
  }
  const scan = pattern === undefined ? undefined : parseCachePattern(pattern);
  if (taskType !== undefined && !(TASK_TYPES as readonly string[]).includes(taskType)) {
    throw new AppError('unknown_task_type', undefined, { details: { field: 'task_type' } });
  }
  return parseOrThrow(CacheInvalidateRequestSchema, { pattern: scan, task_type: taskType });
}

/** Cache administration, forwarded to any orchestrator (the figures are cluster-wide); administrators only. */
export function cacheRoutes(admin: OrchestratorAdmin): Router {
  const router = Router();
  router
    .route('/api/cache/stats')
    .get(requireAdmin, async (_req, res) => {
      res.json(await admin.cacheStats(contextOf(res)));
    })
    .all(methodNotAllowed('GET'));
  router
    .route('/api/cache/invalidate')
    .post(requireAdmin, async (req, res) => {
      const request = parseInvalidateQuery(req.query);
      res.json(await admin.cacheInvalidate(request, contextOf(res)));
    })
    .all(methodNotAllowed('POST'));
  router
    .route('/api/cache/health')
    .get(requireAdmin, async (_req, res) => {
      res.json(await admin.cacheHealth(contextOf(res)));
    })
    .all(methodNotAllowed('GET'));
  return router;
}
