import { z } from 'zod';
import { MODES, TASK_TYPES, UsageSchema } from './chat.js';

const base = {
  request_id: z.string(),
  /** Which delivery attempt of the request produced the frame; stale attempts are ignored. */
  attempt: z.number().int().nonnegative(),
  /**
   * Frames of the model lane: which delivery of the queued job (JetStream's delivery count, from 1) made them.
   * A higher delivery restarts the answer; lower ones are stale. Absent (0): the lookup lane.
   */
  delivery: z.number().int().positive().optional(),
};

export const AckFrameSchema = z.object({ type: z.literal('ack'), ...base, worker_id: z.string() });
export const HeartbeatFrameSchema = z.object({ type: z.literal('heartbeat'), ...base });
export const ChunkFrameSchema = z.object({
  type: z.literal('chunk'),
  ...base,
  /** From 0, no gaps. */
  seq: z.number().int().nonnegative(),
  delta: z.string(),
});
export const DoneFrameSchema = z.object({
  type: z.literal('done'),
  ...base,
  /** How many chunk frames came before this one, so a receiver can tell a gap. */
  chunks: z.number().int().nonnegative(),
  suggestions: z.array(z.string()),
  model: z.string(),
  mode: z.enum(MODES),
  task_type: z.enum(TASK_TYPES),
  cached: z.boolean(),
  /**
   * Where the answer came from: a stored answer (`cache`), a model call another request made at the same time
   * (`peer`, single flight) or this request's own model call (`model`). Older workers omit it.
   */
  source: z.enum(['cache', 'peer', 'model']).optional(),
  usage: UsageSchema,
  cost_usd: z.number().nonnegative(),
  latency_ms: z.number().nonnegative(),
  /** The usage was counted with a tokenizer: the provider sent none. */
  usage_estimated: z.boolean().optional(),
  /** Time from the request reaching the worker to the first chunk. */
  ttft_ms: z.number().nonnegative().optional(),
  worker_id: z.string().optional(),
});
/**
 * The chunks sent so far are void (the model failed mid-answer and another one answers): the whole new answer
 * follows, from `seq` 0. `chunks` of the `done` frame counts the chunks after the last reset.
 */
export const ResetFrameSchema = z.object({ type: z.literal('reset'), ...base });
export const ErrorFrameSchema = z.object({
  type: z.literal('error'),
  ...base,
  code: z.string(),
  message: z.string(),
  retryable: z.boolean(),
  /** When trying again makes sense (e.g. `overloaded`); the gateway turns it into `Retry-After`. */
  retry_after_ms: z.number().int().nonnegative().optional(),
});
/**
 * The lookup lane found no stored answer and put the job in the work queue: the model lane sends the rest,
 * each frame with its `delivery`. Until then only the deadline runs; a running delivery that falls silent
 * is redelivered by the queue within `redelivery_ms`.
 */
export const QueuedFrameSchema = z.object({
  type: z.literal('queued'),
  ...base,
  /** Jobs in the queue when this one joined (waiting and running), when known. */
  depth: z.number().int().nonnegative().optional(),
  /** How long after a worker's last sign of life the queue hands its job to another worker. */
  redelivery_ms: z.number().int().positive(),
});

export const FrameSchema = z.discriminatedUnion('type', [
  AckFrameSchema,
  HeartbeatFrameSchema,
  ChunkFrameSchema,
  ResetFrameSchema,
  DoneFrameSchema,
  ErrorFrameSchema,
  QueuedFrameSchema,
]);
export type AckFrame = z.infer<typeof AckFrameSchema>;
export type HeartbeatFrame = z.infer<typeof HeartbeatFrameSchema>;
export type ChunkFrame = z.infer<typeof ChunkFrameSchema>;
export type ResetFrame = z.infer<typeof ResetFrameSchema>;
export type DoneFrame = z.infer<typeof DoneFrameSchema>;
export type ErrorFrame = z.infer<typeof ErrorFrameSchema>;
export type QueuedFrame = z.infer<typeof QueuedFrameSchema>;
export type Frame = z.infer<typeof FrameSchema>;
export type TerminalFrame = DoneFrame | ErrorFrame;

export const isTerminal = (f: Frame): f is TerminalFrame => f.type === 'done' || f.type === 'error';
