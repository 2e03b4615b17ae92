import { z } from 'zod';
import { JOB_LIMITS, JobsEnvFields } from '@actionedx/shared';

/** The gateway's job settings (env): the shared job fields plus the body limit of a submission. */
export const GatewayJobsEnvFields = {
  ...JobsEnvFields,
  /** Largest `POST /api/jobs` body (a long document); chat keeps BODY_LIMIT_BYTES. */
  JOB_BODY_LIMIT_BYTES: z.coerce.number().int().min(1_024).max(16 * 1024 * 1024).default(JOB_LIMITS.bodyMaxBytes),
};

export interface GatewayJobsConfig {
  /** Unset: `/api/jobs` answers 503 jobs_unavailable. */
  queueRedisUrl: string | undefined;
  attempts: number;
  backoffMs: number;
  webhookHosts: string | undefined;
  webhookAttempts: number;
  webhookBackoffMs: number;
  retentionSeconds: number;
  bodyLimitBytes: number;
}

// The schema exists for its type: the gateway's env schema spreads the fields themselves.
const _jobsEnvSchema = z.object(GatewayJobsEnvFields);
type JobsEnv = z.output<typeof _jobsEnvSchema>;

export function gatewayJobsConfig(e: JobsEnv): GatewayJobsConfig {
  return {
    queueRedisUrl: e.QUEUE_REDIS_URL,
    attempts: e.JOB_ATTEMPTS,
    backoffMs: e.JOB_BACKOFF_MS,
    webhookHosts: e.JOB_WEBHOOK_HOSTS,
    webhookAttempts: e.JOB_WEBHOOK_ATTEMPTS,
    webhookBackoffMs: e.JOB_WEBHOOK_BACKOFF_MS,
    retentionSeconds: e.JOB_RETENTION_SECONDS,
    bodyLimitBytes: e.JOB_BODY_LIMIT_BYTES,
  };
}
