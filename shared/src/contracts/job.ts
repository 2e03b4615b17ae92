import { z } from 'zod';
import { ChatRequestSchema } from './chat.js';

/** What the gateway publishes on `chat.v1.request`; the worker answers the NATS request with an `ack`. */
export const ChatJobSchema = z.object({
  request_id: z.string().min(1).max(64),
  attempt: z.number().int().nonnegative(),
  /** Subject the worker publishes the frames of this request on. */
  reply_to: z.string().min(1),
  /** Epoch milliseconds after which the worker stops and aborts its upstream call. */
  deadline_at: z.number().int().positive(),
  /** Idle time after which a worker sends a heartbeat. */
  heartbeat_ms: z.number().int().positive(),
  request: ChatRequestSchema,
});
export type ChatJob = z.infer<typeof ChatJobSchema>;
export type ChatJobInput = z.input<typeof ChatJobSchema>;

export const CancelMessageSchema = z.object({
  request_id: z.string().min(1),
  reason: z.string().optional(),
  /** Stop only attempts up to this one (a superseded attempt); absent: every attempt. */
  up_to_attempt: z.number().int().nonnegative().optional(),
});
export type CancelMessage = z.infer<typeof CancelMessageSchema>;

/**
 * A chat job in the work queue (model lane): the job as the gateway sent it, its request with the session's
 * history already attached by the lookup lane, and when it was queued.
 */
export const QueuedChatJobSchema = ChatJobSchema.extend({
  /** Epoch milliseconds when the lookup lane queued it (wait time = start - queued_at). */
  queued_at: z.number().int().positive(),
  /** The lookup lane looked the answer up and missed: the model lane goes straight to the flight lock. */
  looked_up: z.boolean(),
  /**
   * The token of the single-flight lock the lookup lane reserved for this miss (identical misses follow it
   * meanwhile): the model lane's first delivery adopts it. Absent: no reservation (no cache key, Redis down,
   * or queued by the gateway).
   */
  flight_token: z.string().min(1).max(64).optional(),
});
export type QueuedChatJob = z.infer<typeof QueuedChatJobSchema>;
