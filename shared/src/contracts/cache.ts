import { z } from 'zod';
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

export const CacheInvalidateRequestSchema = z
  .object({ pattern: z.string().min(1).max(256).optional(), task_type: z.enum(TASK_TYPES).optional() })
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
export const WorkerPingSchema = z.object({ worker_id: z.string(), in_flight: z.number().int().nonnegative() });
export type WorkerPing = z.infer<typeof WorkerPingSchema>;
