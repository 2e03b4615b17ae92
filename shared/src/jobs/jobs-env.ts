import { z } from 'zod';
import { env } from '../config.js';

/** Job settings both the gateway (producer) and the job workers read. */
export const JobsEnvFields = {
  /** BullMQ's Redis: its own server with maxmemory-policy noeviction, never the cache Redis. Unset: no jobs. */
  QUEUE_REDIS_URL: env.url(['redis', 'rediss']).optional(),
  /** Tries of a job in all; a provider 429 does not use one up. */
  JOB_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  /** First retry delay of a failed job, doubled at each retry, with jitter. */
  JOB_BACKOFF_MS: env.ms(2_000),
  /** Hosts a webhook may call (comma-separated `host`, `host:port`, `*.domain`); default loopback only. */
  JOB_WEBHOOK_HOSTS: z.string().optional(),
  /** Delivery attempts of one webhook, and the first retry delay (doubled each time, with jitter). */
  JOB_WEBHOOK_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(6),
  JOB_WEBHOOK_BACKOFF_MS: env.ms(1_000),
  /** How long a finished job, its result and its events are kept. */
  JOB_RETENTION_SECONDS: z.coerce.number().int().positive().default(7 * 24 * 3600),
};
