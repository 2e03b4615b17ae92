import type { z } from 'zod';
import {
  AppError,
  JOB_KINDS,
  JOB_LIMITS,
  JobSubmitSchema,
  splitSections,
  type ErrorCode,
  type JobSubmission,
  type WebhookPolicy,
} from '@actionedx/shared';

type Issue = z.core.$ZodIssue;

const fieldOf = (issue: Issue): string => issue.path.map(String).join('.') || '(body)';

function codeOf(issue: Issue): ErrorCode {
  const [first, second] = issue.path;
  if (first === 'kind' || (issue.path.length === 0 && issue.code === 'invalid_union')) return 'unknown_job_kind';
  if (first === 'mode') return 'unknown_mode';
  if (first === 'task_type') return 'unknown_task_type';
  if (first === 'input' && second === 'items' && issue.path.length === 2 && issue.code === 'too_big') return 'too_many_items';
  return 'validation_failed';
}

/**
 * A job submission with defaults applied, or the AppError a client can act on: unknown kind, too many items or
 * sections, a field out of its limits (JOB_LIMITS), a webhook URL the policy refuses.
 */
export function parseJobSubmission(body: unknown, policy: WebhookPolicy): JobSubmission {
  const kind = (body as { kind?: unknown } | null)?.kind;
  if (typeof body === 'object' && body !== null && !(JOB_KINDS as readonly unknown[]).includes(kind)) {
    throw new AppError('unknown_job_kind', `kind must be one of ${JOB_KINDS.join(', ')}.`, { details: { field: 'kind' } });
  }
  const parsed = JobSubmitSchema.safeParse(body);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    const code = codeOf(first);
    throw new AppError(code, code === 'validation_failed' || code === 'too_many_items' ? `${fieldOf(first)}: ${first.message}` : undefined, {
      details: { field: fieldOf(first), issues: parsed.error.issues.map((i) => ({ field: fieldOf(i), message: i.message })) },
    });
  }
  const job = parsed.data;
  if (job.kind === 'document_audit') {
    const sections = splitSections(job.input.document).length;
    if (sections > JOB_LIMITS.sectionsMax) {
      throw new AppError('too_many_items', `The document splits into ${sections} sections; at most ${JOB_LIMITS.sectionsMax}.`, {
        details: { field: 'input.document', sections },
      });
    }
  }
  if (job.webhook_url !== undefined) policy.check(job.webhook_url);
  return job;
}
