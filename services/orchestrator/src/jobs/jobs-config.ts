import { z } from 'zod';
import { env, JobsEnvFields } from '@actionedx/shared';

export const ROLES = ['chat', 'jobs'] as const;
export type Role = (typeof ROLES)[number];

/** The orchestrator's job settings: the shared job fields plus what only a job worker reads. */
export const JobWorkerEnvFields = {
  ...JobsEnvFields,
  /**
   * What this process does, comma-separated: `chat` (NATS chat requests), `jobs` (BullMQ job workers, needs
   * QUEUE_REDIS_URL). Default `chat`: job workers are their own deployment and scale on queue length.
   */
  ROLE: z
    .string()
    .default('chat')
    .transform((v) => [...new Set(v.split(',').map((r) => r.trim().toLowerCase()).filter((r) => r.length > 0))])
    .refine((list) => list.length > 0 && list.every((r) => (ROLES as readonly string[]).includes(r)), 'a comma-separated list of chat, jobs')
    .transform((list) => list as Role[]),
  /** Jobs one worker process runs at once. */
  JOB_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  /** A job's lock, renewed at half of it: a dead worker's jobs go back to the queue after about this long. */
  JOB_LOCK_MS: env.ms(30_000),
  /** How often a worker looks for jobs whose worker died. */
  JOB_STALLED_INTERVAL_MS: env.ms(30_000),
  /** Jobs started per second across all job workers (BullMQ limiter; it also makes a 429 pause every worker). */
  JOB_STARTS_PER_SECOND: z.coerce.number().int().min(1).max(10_000).default(50),
  /** How long the queue waits after a provider 429 that names no retry-after. */
  JOB_RATE_LIMIT_MS: env.ms(5_000),
  /** HMAC-SHA256 key of webhook signatures; without it no webhook is sent. */
  JOB_WEBHOOK_SECRET: z.string().min(16, 'at least 16 characters').optional(),
  /** Time a webhook receiver has to answer one delivery. */
  JOB_WEBHOOK_TIMEOUT_MS: env.ms(5_000),
};
