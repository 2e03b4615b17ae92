import { z } from 'zod';
import { AppError } from '../errors.js';
import { TASK_TYPES } from './chat.js';

/** Cache administration over the bus (gateway → any orchestrator). The figures are cluster-wide. */

export const CacheStatusSchema = z.enum(['connected', 'disconnected', 'memory']);
export type CacheStatus = z.infer<typeof CacheStatusSchema>;

export const CacheStatsSchema = z.object({
  status: CacheStatusSchema,
  backend: z.enum(['redis', 'memory']),
  hits: z.number().int().nonnegative(),
  misses: z.number().int().nonnegative(),
  /** Requests answered by a model call another identical request made at the same time (single flight). */
  coalesced: z.number().int().nonnegative(),
  /** hits / (hits + misses + coalesced), 0 when there were none. */
  hit_rate: z.number().min(0).max(1),
  total_keys: z.number().int().nonnegative(),
  keys_by_task_type: z.record(z.string(), z.number().int().nonnegative()),
  memory_used_bytes: z.number().int().nonnegative().nullable(),
});
export type CacheStats = z.infer<typeof CacheStatsSchema>;

/** The namespace of cached answers: keys `ai_cache:<task_type>:<sha256 hex>`, as the seed's patterns expect. */
export const CACHE_KEY_PREFIX = 'ai_cache';
/** A namespace prefix holds no glob or separator characters, so `<prefix>:*` never reaches into another one. */
export const CACHE_PREFIX_FORMAT = /^[A-Za-z0-9_-]{1,64}$/;
export const CACHE_PATTERN_MAX_CHARS = 256;
/** The seed's own call, `POST /api/cache/invalidate?pattern=*`: every answer of the namespace. */
export const EVERY_ANSWER_PATTERN = '*';

/**
 * An invalidation pattern as both sides of the bus read it: `*` (every answer), or `<prefix>:` followed by
 * letters, digits, `_ : -` and the wildcards `* ?`, at most 256 characters. No `.` (no key holds one, and it
 * would be a wildcard to a regular expression), no classes or escapes: a pattern should be read at a glance.
 * The output is the pattern to scan, `*` already widened to `<prefix>:*`.
 */
export function cachePatternSchema(prefix: string = CACHE_KEY_PREFIX) {
  if (!CACHE_PREFIX_FORMAT.test(prefix)) throw new TypeError(`cache prefix must match ${CACHE_PREFIX_FORMAT}, got "${prefix}"`);
  return z
    .string()
    .max(CACHE_PATTERN_MAX_CHARS, `the pattern is longer than ${CACHE_PATTERN_MAX_CHARS} characters`)
    .regex(
      new RegExp(`^(?:\\*|${prefix}:[A-Za-z0-9_:*?-]+)$`),
      `the pattern must be * or start with ${prefix}: and then hold only letters, digits, _ : - and the wildcards * ?`,
    )
    .transform((p) => (p === EVERY_ANSWER_PATTERN ? `${prefix}:*` : p));
}

/** The public pattern rules (`ai_cache:`); the gateway's query parameter and the OpenAPI document use it. */
export const CachePatternSchema = cachePatternSchema();

/** A pattern checked against `cachePatternSchema(prefix)`, or an `invalid_pattern` error naming the rule broken. */
export function parseCachePattern(pattern: string, prefix: string = CACHE_KEY_PREFIX): string {
  const schema = prefix === CACHE_KEY_PREFIX ? CachePatternSchema : cachePatternSchema(prefix);
  const parsed = schema.safeParse(pattern);
  if (parsed.success) return parsed.data;
  throw new AppError('invalid_pattern', parsed.error.issues[0]?.message, { details: { field: 'pattern' } });
}

/**
 * On the bus the pattern is only a bounded string: each worker checks it against its own namespace with
 * `parseCachePattern`, so a refusal is `invalid_pattern`, not a malformed message.
 */
export const CacheInvalidateRequestSchema = z
  .object({
    pattern: z.string().min(1).max(CACHE_PATTERN_MAX_CHARS).optional(),
    task_type: z.enum(TASK_TYPES).optional(),
  })
  .refine((r) => r.pattern !== undefined || r.task_type !== undefined, 'give a pattern or a task_type');
export type CacheInvalidateRequest = z.infer<typeof CacheInvalidateRequestSchema>;

export const CacheInvalidateResultSchema = z.object({ pattern: z.string(), deleted: z.number().int().nonnegative() });
export type CacheInvalidateResult = z.infer<typeof CacheInvalidateResultSchema>;

export const CacheHealthSchema = z.object({
  status: z.enum(['healthy', 'unhealthy', 'disconnected', 'memory']),
  backend: z.enum(['redis', 'memory']),
  latency_ms: z.number().nonnegative().nullable(),
  breaker: z.enum(['closed', 'open', 'half_open']),
});
export type CacheHealth = z.infer<typeof CacheHealthSchema>;

/** The reply to any administrative bus request: the data or an error with its stable code. */
export const AdminReplySchema = z.union([
  z.object({ ok: z.literal(true), data: z.unknown() }),
  z.object({
    ok: z.literal(false),
    error: z.object({ code: z.string(), message: z.string(), retryable: z.boolean() }),
  }),
]);
export type AdminReply = z.infer<typeof AdminReplySchema>;

/** What `orchestrator.v1.ping` answers. */
export const WorkerPingSchema = z.object({
  worker_id: z.string(),
  in_flight: z.number().int().nonnegative(),
  /** The models each task type's route may answer with, in the order they are tried (older workers omit it). */
  routes: z.partialRecord(z.enum(TASK_TYPES), z.array(z.string())).optional(),
});
export type WorkerPing = z.infer<typeof WorkerPingSchema>;

export const BREAKER_STATES = ['closed', 'open', 'half_open'] as const;
/** What `orchestrator.v1.breakers` answers: one replica's model-target circuit breakers (each replica has its own). */
export const WorkerBreakersSchema = z.object({
  worker_id: z.string(),
  model_targets: z.record(z.string(), z.enum(BREAKER_STATES)),
});
export type WorkerBreakers = z.infer<typeof WorkerBreakersSchema>;
