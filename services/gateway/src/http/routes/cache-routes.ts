import { Router } from 'express';
import {
  AppError,
  CacheInvalidateRequestSchema,
  TASK_TYPES,
  type CacheInvalidateRequest,
} from '@actionedx/shared';
import type { OrchestratorAdmin } from '../../admin/orchestrator-admin.js';
import { parseOrThrow } from '../../chat/request-validation.js';
import { methodNotAllowed } from '../error-mapper.js';
import { contextOf } from '../request-context.js';

/** Invalidation never leaves the answer cache's namespace, whatever a client asks. */
export const CACHE_KEY_PREFIX = 'ai_cache:';
const PATTERN_MAX_CHARS = 256;
/**
 * After the prefix: key characters and the `*` and `?` wildcards. Character classes and escapes
 * (`[...]`, `\\`) are refused: no key needs them, and a pattern should be read at a glance.
 */
const PATTERN_REST = /^[A-Za-z0-9_.:*?-]+$/;

function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  throw new AppError('validation_failed', `${name} must be given once.`, { details: { field: name } });
}

/** `?pattern=ai_cache:...&task_type=...` as the orchestrators' invalidate request. */
export function parseInvalidateQuery(query: Record<string, unknown>): CacheInvalidateRequest {
  const pattern = single(query.pattern, 'pattern');
  const taskType = single(query.task_type, 'task_type');
  if (pattern === undefined && taskType === undefined) {
    throw new AppError('validation_failed', `Give a pattern (${CACHE_KEY_PREFIX}...) or a task_type.`);
  }
  if (
    pattern !== undefined &&
    (!pattern.startsWith(CACHE_KEY_PREFIX) ||
      pattern.length > PATTERN_MAX_CHARS ||
      !PATTERN_REST.test(pattern.slice(CACHE_KEY_PREFIX.length)))
  ) {
    throw new AppError(
      'invalid_pattern',
      `The pattern must start with ${CACHE_KEY_PREFIX}, then hold letters, digits, _ . : - and the wildcards * ?, ` +
        `${PATTERN_MAX_CHARS} characters at most.`,
      { details: { field: 'pattern' } },
    );
  }
  if (taskType !== undefined && !(TASK_TYPES as readonly string[]).includes(taskType)) {
    throw new AppError('unknown_task_type', undefined, { details: { field: 'task_type' } });
  }
  return parseOrThrow(CacheInvalidateRequestSchema, { pattern, task_type: taskType });
}

/** Cache administration, forwarded to any orchestrator (the figures are cluster-wide). */
export function cacheRoutes(admin: OrchestratorAdmin): Router {
  const router = Router();
  router
    .route('/api/cache/stats')
    .get(async (_req, res) => {
      res.json(await admin.cacheStats(contextOf(res)));
    })
    .all(methodNotAllowed('GET'));
  router
    .route('/api/cache/invalidate')
    .post(async (req, res) => {
      const request = parseInvalidateQuery(req.query as Record<string, unknown>);
      res.json(await admin.cacheInvalidate(request, contextOf(res)));
    })
    .all(methodNotAllowed('POST'));
  router
    .route('/api/cache/health')
    .get(async (_req, res) => {
      res.json(await admin.cacheHealth(contextOf(res)));
    })
    .all(methodNotAllowed('GET'));
  return router;
}
