import { createHash } from 'node:crypto';
import { z } from 'zod';
import { LIMITS, MODES, TASK_TYPES, UsageSchema } from './chat.js';

/**
 * Background jobs: work too long for a chat turn, run by job workers through the same answer pipeline
 * (cache, single flight, routing) one step at a time, with progress pushed to the owner.
 */

/** Kinds of job; each has a plan of steps in the orchestrator's job kind registry. */
export const JOB_KINDS = ['document_audit', 'batch_alignment'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** A kind's task type (prompt, model route, cache TTL) when the submission names none. */
export const JOB_DEFAULT_TASK_TYPE: Record<JobKind, (typeof TASK_TYPES)[number]> = {
  document_audit: 'strategy_audit',
  batch_alignment: 'framework_alignment',
};

/** Input limits of jobs, documented in the README and enforced by the gateway (and again by the worker). */
export const JOB_LIMITS = {
  /** Characters of a `document_audit` document. */
  documentMaxChars: 200_000,
  /** A document is split into sections of at most this many characters (paragraphs kept whole when they fit). */
  sectionMaxChars: 6_000,
  /** Sections of one document at most (one model call each, plus one synthesis). */
  sectionsMax: 50,
  /** Items of one `batch_alignment` job (one model call each). */
  itemsMax: 50,
  /** Characters of one batch item. */
  itemMaxChars: LIMITS.messageMaxChars,
  titleMaxChars: 200,
  itemIdMaxChars: 64,
  webhookUrlMaxChars: 2_048,
  /** Bytes of a whole `POST /api/jobs` body (a document can be long; chat keeps its 64 KiB). */
  bodyMaxBytes: 1_048_576,
  /** Jobs listed per page at most. */
  listMaxPage: 100,
} as const;

const idString = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[A-Za-z0-9_.:@-]+$/, 'may only hold letters, digits and _ . : @ -');

const nonBlank = (max: number, what: string) =>
  z
    .string()
    .max(max, `${what} is longer than ${max} characters`)
    .refine((s) => s.trim().length > 0, `${what} is empty`);

export const DocumentAuditInputSchema = z.strictObject({
  document: nonBlank(JOB_LIMITS.documentMaxChars, 'document'),
  title: z.string().max(JOB_LIMITS.titleMaxChars).optional(),
});
export type DocumentAuditInput = z.infer<typeof DocumentAuditInputSchema>;

export const BatchItemSchema = z.strictObject({
  id: idString(JOB_LIMITS.itemIdMaxChars).optional(),
  text: nonBlank(JOB_LIMITS.itemMaxChars, 'item text'),
});
export const BatchAlignmentInputSchema = z.strictObject({
  items: z.array(BatchItemSchema).min(1, 'items is empty').max(JOB_LIMITS.itemsMax, `at most ${JOB_LIMITS.itemsMax} items`),
  title: z.string().max(JOB_LIMITS.titleMaxChars).optional(),
});
export type BatchAlignmentInput = z.infer<typeof BatchAlignmentInputSchema>;

/** Fields every job submission has besides its kind and input. */
const submitCommon = {
  user_id: idString(LIMITS.userIdMaxChars),
  /** Default: the kind's task type (document_audit: strategy_audit, batch_alignment: framework_alignment). */
  task_type: z.enum(TASK_TYPES).optional(),
  mode: z.enum(MODES).default('strategist'),
  /** The job's result is also recorded in this session's conversation. */
  session_id: idString(LIMITS.sessionIdMaxChars).optional(),
  /** Called once when the job ends (http or https on an allowed host), signed with HMAC-SHA256. */
  webhook_url: z.string().max(JOB_LIMITS.webhookUrlMaxChars).optional(),
  /** `false`: every step calls the model (the cache is neither read nor written). */
  use_cache: z.boolean().default(true),
};

/** `POST /api/jobs`. */
export const JobSubmitSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('document_audit'), input: DocumentAuditInputSchema, ...submitCommon }),
  z.object({ kind: z.literal('batch_alignment'), input: BatchAlignmentInputSchema, ...submitCommon }),
]);
export type JobSubmitInput = z.input<typeof JobSubmitSchema>;
export type JobSubmission = z.output<typeof JobSubmitSchema>;
export type JobInput = JobSubmission['input'];

export const JOB_STATES = ['queued', 'active', 'completed', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL_JOB_STATES: ReadonlySet<JobState> = new Set(['completed', 'failed', 'cancelled']);
export const isTerminalJobState = (s: JobState): boolean => TERMINAL_JOB_STATES.has(s);

export const JobErrorSchema = z.object({ code: z.string(), message: z.string(), retryable: z.boolean() });
export type JobError = z.infer<typeof JobErrorSchema>;

/** One step's answer: a section of a document, or an item of a batch. */
export const JobPartSchema = z.object({
  index: z.number().int().nonnegative(),
  label: z.string(),
  response: z.string(),
  model: z.string(),
  cached: z.boolean(),
});
export type JobPart = z.infer<typeof JobPartSchema>;

export const JobResultSchema = z.object({
  /** The synthesis over every part (document_audit); null when the kind has none (batch_alignment). */
  summary: z.string().nullable(),
  parts: z.array(JobPartSchema),
  suggestions: z.array(z.string()),
});
export type JobResult = z.infer<typeof JobResultSchema>;

export const JobProgressSchema = z.object({
  percent: z.number().int().min(0).max(100),
  message: z.string(),
});

/** `GET /api/jobs/{id}` (and each entry of `GET /api/jobs`, without `result`). */
export const JobViewSchema = z.object({
  id: z.string(),
  kind: z.enum(JOB_KINDS),
  state: z.enum(JOB_STATES),
  progress: JobProgressSchema,
  task_type: z.enum(TASK_TYPES),
  mode: z.enum(MODES),
  title: z.string().nullable(),
  session_id: z.string().nullable(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  /** Times the job was started so far: a retry after a failure, a lost worker or a rate-limit wait is one more. */
  attempts: z.number().int().nonnegative(),
  /** Steps done of all the job's steps (parts, plus the synthesis when the kind has one). */
  steps_done: z.number().int().nonnegative(),
  steps_total: z.number().int().nonnegative(),
  cancel_requested: z.boolean(),
  result: JobResultSchema.nullable().optional(),
  error: JobErrorSchema.nullable(),
  /** Tokens and cost of the model calls of this job (cached steps add none). */
  usage: UsageSchema,
  cost_usd: z.number().nonnegative(),
  webhook: z
    .object({ state: z.enum(['pending', 'delivered', 'failed']), attempts: z.number().int().nonnegative() })
    .nullable(),
});
export type JobView = z.infer<typeof JobViewSchema>;

export const JobListSchema = z.object({
  jobs: z.array(JobViewSchema),
  total: z.number().int().nonnegative(),
  /** The next page, or null on the last one. */
  next_offset: z.number().int().nonnegative().nullable(),
});
export type JobList = z.infer<typeof JobListSchema>;

const eventBase = {
  job_id: z.string(),
  kind: z.enum(JOB_KINDS),
  /** From 1 per job, no gaps among the events a job publishes: the SSE event id. */
  seq: z.number().int().positive(),
};

/**
 * The events of a job: on NATS (`jobs.v1.events.<owner key>`), as WebSocket frames pushed to every socket of
 * the owner, and as Server-Sent Events (`GET /api/jobs/{id}/events`, event name = `type`, id = `seq`).
 */
export const JobProgressEventSchema = z.object({
  type: z.literal('job_progress'),
  ...eventBase,
  state: z.enum(['queued', 'active']),
  percent: z.number().int().min(0).max(100),
  message: z.string(),
  steps_done: z.number().int().nonnegative(),
  steps_total: z.number().int().nonnegative(),
});
export const JobDoneEventSchema = z.object({
  type: z.literal('job_done'),
  ...eventBase,
  /** The synthesis (document_audit), or null; the whole result is at `result_url`. */
  summary: z.string().nullable(),
  result_url: z.string(),
  usage: UsageSchema,
  cost_usd: z.number().nonnegative(),
});
export const JobFailedEventSchema = z.object({
  type: z.literal('job_failed'),
  ...eventBase,
  /** `cancelled` for a job cancelled by its owner. */
  state: z.enum(['failed', 'cancelled']),
  error: JobErrorSchema,
});
export const JobEventSchema = z.discriminatedUnion('type', [JobProgressEventSchema, JobDoneEventSchema, JobFailedEventSchema]);
export type JobEvent = z.infer<typeof JobEventSchema>;
export type JobProgressEvent = z.infer<typeof JobProgressEventSchema>;
/** An event before the store numbered it. */
export type JobEventDraft = DistributiveOmitSeq<JobEvent>;
type DistributiveOmitSeq<T> = T extends unknown ? Omit<T, 'seq'> : never;

export const JOB_EVENT_TYPES = ['job_progress', 'job_done', 'job_failed'] as const;
export const isFinalJobEvent = (e: JobEvent): boolean => e.type !== 'job_progress';

/** A cancel for whichever worker runs the job (every job worker listens, no queue group). */
export const JobCancelMessageSchema = z.object({ job_id: z.string().min(1) });
export type JobCancelMessage = z.infer<typeof JobCancelMessageSchema>;

/**
 * A user's key in subjects and Redis keys: user ids may hold `.`, `:` and `@`, which a NATS subject cannot
 * carry as one token, so a hash of the id stands for it.
 */
export const ownerKey = (userId: string): string => createHash('sha256').update(userId).digest('hex').slice(0, 32);

const EVENTS_PREFIX = 'jobs.v1.events.';

export const JobSubjects = {
  /** Every event of one owner's jobs. */
  events: (owner: string) => `${EVENTS_PREFIX}${ownerKey(owner)}`,
  /** Every job event of every owner (a gateway's one subscription). */
  allEvents: `${EVENTS_PREFIX}*`,
  /** The owner key a job event's subject names. */
  ownerKeyOf: (subject: string): string => subject.slice(EVENTS_PREFIX.length),
  /** Broadcast to every job worker: stop the job's running step. */
  cancel: 'jobs.v1.cancel',
} as const;

/** The API paths of a job. */
export const jobPaths = (id: string) => ({ self: `/api/jobs/${id}`, events: `/api/jobs/${id}/events` });
