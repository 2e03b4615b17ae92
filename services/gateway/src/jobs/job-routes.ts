import { Router, type Request } from 'express';
import type { Counter } from 'prom-client';
import { AppError, JOB_KINDS, JOB_LIMITS, jobPaths, toJobView, type Logger } from '@actionedx/shared';
import { methodNotAllowed } from '../http/error-mapper.js';
import { jsonBody } from '../http/json-body.js';
import { callerOf } from './caller.js';
import type { JobDesk } from './job-desk.js';
import type { JobPushHub } from './job-push-hub.js';
import { streamJobEvents } from './job-sse.js';

export interface JobRoutesDeps {
  /** Undefined when no queue Redis is configured: every job endpoint answers 503 jobs_unavailable. */
  desk: JobDesk | undefined;
  hub: JobPushHub;
  bodyLimitBytes: number;
  logger: Logger;
  /** `jobs_submitted_total{kind,outcome}` */
  submitted: Counter<'kind' | 'outcome'>;
}

/** A submission's outcome as a label: accepted, rejected (4xx) or unavailable (503). */
const outcomeOf = (err: unknown): 'rejected' | 'unavailable' => (err instanceof AppError && err.status < 500 ? 'rejected' : 'unavailable');

const JOB_ID = /^job-[0-9a-f-]{36}$/;

function jobIdOf(req: Request): string {
  const id = String(req.params.id);
  // Anything else cannot be a job: the same 404 as a job of someone else.
  if (!JOB_ID.test(id)) throw new AppError('not_found', 'No such job.');
  return id;
}

function page(req: Request): { offset: number; limit: number } {
  const num = (name: string, def: number, max: number): number => {
    const raw = req.query[name];
    if (raw === undefined) return def;
    const n = Number(raw);
    if (typeof raw !== 'string' || !Number.isSafeInteger(n) || n < 0 || n > max) {
      throw new AppError('validation_failed', `${name} must be an integer from 0 to ${max}.`, { details: { field: name } });
    }
    return n;
  };
  return { offset: num('offset', 0, 1_000_000), limit: Math.max(1, num('limit', 20, JOB_LIMITS.listMaxPage)) };
}

/**
 * `POST /api/jobs` (202 + Location), `GET /api/jobs` (the caller's, newest first, paginated), `GET /api/jobs/{id}`,
 * `DELETE /api/jobs/{id}` (cancel), `GET /api/jobs/{id}/events` (Server-Sent Events).
 */
export function jobRoutes(deps: JobRoutesDeps): Router {
  const router = Router();
  const desk = (): JobDesk => {
    if (!deps.desk) {
      throw new AppError(
        'jobs_unavailable',
        'Background jobs need a queue Redis: set QUEUE_REDIS_URL (a Redis run with maxmemory-policy noeviction) and run job workers (ROLE=jobs).',
      );
    }
    return deps.desk;
  };
  router
    .route('/api/jobs')
    .post(...jsonBody(deps.bodyLimitBytes), async (req, res) => {
      const named = (req.body as { kind?: unknown } | null)?.kind;
      const kind = (JOB_KINDS as readonly unknown[]).includes(named) ? String(named) : 'unknown';
      try {
        const caller = callerOf(req, res);
        const view = await desk().submit(caller, req.body);
        deps.submitted.inc({ kind, outcome: 'accepted' });
        res.status(202).location(jobPaths(view.id).self).json({ ...view, links: jobPaths(view.id) });
      } catch (err) {
        deps.submitted.inc({ kind, outcome: outcomeOf(err) });
        throw err;
      }
    })
    .get(async (req, res) => {
      const caller = callerOf(req, res);
      const { offset, limit } = page(req);
      res.json(await desk().list(caller, offset, limit));
    })
    .all(methodNotAllowed('GET', 'POST'));
  router
    .route('/api/jobs/:id')
    .get(async (req, res) => {
      const caller = callerOf(req, res);
      const rec = await desk().get(caller, jobIdOf(req));
      res.json({ ...toJobView(rec), links: jobPaths(rec.id) });
    })
    .delete(async (req, res) => {
      const caller = callerOf(req, res);
      const { view, done } = await desk().cancel(caller, jobIdOf(req));
      // 200: it has ended (cancelled); 202: its worker was told to stop and will end it shortly.
      res.status(done ? 200 : 202).json({ ...view, links: jobPaths(view.id) });
    })
    .all(methodNotAllowed('GET', 'DELETE'));
  router
    .route('/api/jobs/:id/events')
    .get(async (req, res) => {
      const caller = callerOf(req, res);
      await streamJobEvents(req, res, { desk: desk(), hub: deps.hub, logger: deps.logger }, caller, jobIdOf(req));
    })
    .all(methodNotAllowed('GET'));
  return router;
}
