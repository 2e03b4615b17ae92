import { z } from 'zod';

/** Personas of the assistant. */
export const MODES = ['strategist', 'ally', 'oracle'] as const;
export type Mode = (typeof MODES)[number];

/** Task types; each has a TTL, a model route and a prompt template in the orchestrator's registry. */
export const TASK_TYPES = [
  'strategy_audit',
  'realtime_tutoring',
  'collaboration',
  'framework_alignment',
  'ethical_assessment',
] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** Input limits, documented in the README. */
export const LIMITS = {
  /** Characters in one message. */
  messageMaxChars: 16_000,
  userIdMaxChars: 128,
  sessionIdMaxChars: 128,
  /** Turns of history sent with a request. */
  historyMaxTurns: 50,
  /** Bytes of the serialised `context` object. */
  contextMaxBytes: 16_384,
  /** Bytes of a whole HTTP body or WebSocket frame. */
  bodyMaxBytes: 65_536,
  /** Largest `max_tokens` a request may ask for. */
  maxTokens: 32_768,
  /** Nesting levels of a whole HTTP body or WebSocket message (the body object itself is level 1). */
  jsonMaxDepth: 32,
} as const;

/**
 * Whether `value` nests objects and arrays deeper than `maxDepth` levels (a scalar is 0, `{}` is 1). Iterative,
 * and it stops at the first branch past the bound: any input, however deep, costs at most its size and no stack.
 */
export function jsonDepthExceeds(value: unknown, maxDepth: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > maxDepth) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

const idString = (max: number) =>
  z
    .string()
    .min(1, 'may not be empty')
    .max(max, `is longer than ${max} characters`)
    .regex(/^[A-Za-z0-9_.:@-]+$/, 'may only hold letters, digits and _ . : @ -');

/**
 * Ids a client picks, the same on REST, in the WebSocket path and in every document. They may hold `.` `:` `@`:
 * wherever one must go into a NATS subject or a Redis key it is encoded first.
 */
export const UserIdSchema = idString(LIMITS.userIdMaxChars);
export const SessionIdSchema = idString(LIMITS.sessionIdMaxChars);

export const HistoryTurnSchema = z.object({
  role: z.enum(['user', 'assistant']),
  content: z.string().max(LIMITS.messageMaxChars),
});
export type HistoryTurn = z.infer<typeof HistoryTurnSchema>;

const CONTEXT_MAX_DEPTH = LIMITS.jsonMaxDepth - 1;

// Depth first: a deep value must never reach a recursive walk (JSON.stringify here, the cache key's encoder later).
const ContextSchema = z
  .record(z.string(), z.unknown())
  .refine((c) => !jsonDepthExceeds(c, CONTEXT_MAX_DEPTH), {
    message: `context nests deeper than ${CONTEXT_MAX_DEPTH} levels`,
    abort: true,
  })
  .refine((c) => Buffer.byteLength(JSON.stringify(c)) <= LIMITS.contextMaxBytes, {
    message: `context is larger than ${LIMITS.contextMaxBytes} bytes`,
  });

/** A chat turn as a client sends it (REST body, WebSocket message). */
export const ChatRequestSchema = z.object({
  user_id: UserIdSchema,
  message: z
    .string()
    .max(LIMITS.messageMaxChars, `message is longer than ${LIMITS.messageMaxChars} characters`)
    .refine((m) => m.trim().length > 0, 'message is empty'),
  mode: z.enum(MODES).default('strategist'),
  task_type: z.enum(TASK_TYPES).default('realtime_tutoring'),
  session_id: SessionIdSchema.optional(),
  context: ContextSchema.default({}),
  history: z.array(HistoryTurnSchema).max(LIMITS.historyMaxTurns).default([]),
  use_cache: z.boolean().default(true),
  /** At most this many generated tokens (never more than the task type's own cap). Part of the cache key. */
  max_tokens: z.number().int().positive().max(LIMITS.maxTokens).optional(),
  /** Sampling temperature passed to the model (0-2; the provider's default when absent). Part of the cache key. */
  temperature: z.number().min(0).max(2).optional(),
});
/** What a client may send (defaults not yet applied). */
export type ChatRequestInput = z.input<typeof ChatRequestSchema>;
/** A validated chat request with every default applied. */
export type ChatRequest = z.output<typeof ChatRequestSchema>;

export const UsageSchema = z.object({
  prompt_tokens: z.number().int().nonnegative(),
  completion_tokens: z.number().int().nonnegative(),
  total_tokens: z.number().int().nonnegative(),
});
export type Usage = z.infer<typeof UsageSchema>;

/** The JSON answer of `POST /api/assistant/chat` (and the `done` event of its stream). */
export const ChatResponseSchema = z.object({
  response: z.string(),
  suggestions: z.array(z.string()),
  model: z.string(),
  mode: z.enum(MODES),
  task_type: z.enum(TASK_TYPES),
  cached: z.boolean(),
  request_id: z.string(),
  usage: UsageSchema,
  cost_usd: z.number().nonnegative(),
  latency_ms: z.number().nonnegative(),
});
export type ChatResponse = z.infer<typeof ChatResponseSchema>;
