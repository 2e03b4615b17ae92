import { z } from 'zod';
import { env } from '@actionedx/shared';

/** The resume settings (env), spread into the gateway's env schema. */
export const ResumeEnvFields = {
  /** How long an answer's frames are kept for a client that reconnects (any replica) to resume it. */
  RESUME_WINDOW_MS: z.coerce.number().int().min(100).max(24 * 3_600_000).default(120_000),
  /**
   * Bytes of frames kept per answer. Exact in memory (embedded mode); on JetStream, whose per-subject bound is a
   * message count, it becomes `max_msgs_per_subject` = RESUME_MAX_BYTES / 256 (a streamed frame is well under that).
   */
  RESUME_MAX_BYTES: z.coerce.number().int().min(16 * 1024).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Bytes of frames kept for every answer together (the retention stream's `max_bytes`; the oldest go first). */
  RESUME_STORE_MAX_BYTES: z.coerce.number().int().min(1024 * 1024).max(16 * 1024 * 1024 * 1024).default(256 * 1024 * 1024),
  /**
   * How long a streamed answer whose client went away (socket closed, SSE cut) keeps running, waiting for a
   * resume on any replica; then it is cancelled as before. 0: cancelled at once (no resume of the rest).
   */
  RESUME_GRACE_MS: env.int(30_000),
  /** How long a finished answer itself (owner and text) is kept, so a resume past the window still gets it. */
  RESUME_ANSWER_TTL_MS: z.coerce.number().int().min(1_000).default(3_600_000),
};

export interface ResumeConfig {
  windowMs: number;
  maxBytesPerAnswer: number;
  storeMaxBytes: number;
  graceMs: number;
  answerTtlMs: number;
}

const _resumeEnvSchema = z.object(ResumeEnvFields);
type ResumeEnv = z.output<typeof _resumeEnvSchema>;

export function resumeConfig(e: ResumeEnv): ResumeConfig {
  return {
    windowMs: e.RESUME_WINDOW_MS,
    maxBytesPerAnswer: e.RESUME_MAX_BYTES,
    storeMaxBytes: e.RESUME_STORE_MAX_BYTES,
    graceMs: e.RESUME_GRACE_MS,
    answerTtlMs: Math.max(e.RESUME_ANSWER_TTL_MS, e.RESUME_WINDOW_MS),
  };
}
