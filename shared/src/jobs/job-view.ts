import type { JobView } from '../contracts/jobs.js';
import type { JobRecord } from './job-store.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** What a client sees of a job (`GET /api/jobs/{id}`, webhook bodies); lists leave the result out. */
export function toJobView(rec: JobRecord, opts: { withResult?: boolean } = {}): JobView {
  return {
    id: rec.id,
    kind: rec.kind,
    state: rec.state,
    progress: { percent: rec.percent, message: rec.message },
    task_type: rec.task_type,
    mode: rec.mode,
    title: rec.title,
    session_id: rec.session_id,
    created_at: iso(rec.created_at)!,
    started_at: iso(rec.started_at),
    finished_at: iso(rec.finished_at),
    attempts: rec.attempts,
    steps_done: rec.steps_done,
    steps_total: rec.steps_total,
    cancel_requested: rec.cancel_requested,
    ...(opts.withResult === false ? {} : { result: rec.result }),
    error: rec.error,
    usage: rec.usage,
    cost_usd: rec.cost_usd,
    webhook: rec.webhook_state === null ? null : { state: rec.webhook_state, attempts: rec.webhook_attempts },
  };
}
