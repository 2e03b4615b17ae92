import { z } from 'zod';

/**
 * Every error a client can see, with its HTTP status and whether trying again may succeed.
 * Codes are a contract: add new ones, never rename.
 */
export const ERROR_CATALOG = {
  invalid_json: { status: 400, retryable: false, message: 'The body is not valid JSON.' },
  validation_failed: { status: 400, retryable: false, message: 'The request is not valid.' },
  unknown_mode: { status: 400, retryable: false, message: 'Unknown mode.' },
  unknown_task_type: { status: 400, retryable: false, message: 'Unknown task type.' },
  message_empty: { status: 400, retryable: false, message: 'The message is empty.' },
  message_too_long: { status: 400, retryable: false, message: 'The message is too long.' },
  payload_too_large: { status: 413, retryable: false, message: 'The body is too large.' },
  unsupported_media_type: { status: 415, retryable: false, message: 'Send application/json.' },
  binary_frame: { status: 400, retryable: false, message: 'Binary frames are not accepted; send JSON text.' },
  unknown_message_type: { status: 400, retryable: false, message: 'Unknown message type.' },
  invalid_pattern: { status: 400, retryable: false, message: 'The pattern is not allowed.' },
  invalid_message: { status: 400, retryable: false, message: 'The message is malformed.' },
  not_found: { status: 404, retryable: false, message: 'Not found.' },
  method_not_allowed: { status: 405, retryable: false, message: 'Method not allowed.' },
  busy: { status: 409, retryable: true, message: 'A turn is already streaming on this session.' },
  rate_limited: { status: 429, retryable: true, message: 'Too many requests.' },
  cancelled: { status: 499, retryable: false, message: 'The request was cancelled.' },
  internal: { status: 500, retryable: true, message: 'Internal error.' },
  upstream_error: { status: 502, retryable: true, message: 'The model provider failed.' },
  upstream_rate_limited: { status: 503, retryable: true, message: 'The model provider is rate limiting.' },
  upstream_bad_response: { status: 502, retryable: true, message: 'The model answered with something unusable.' },
  no_workers: { status: 503, retryable: true, message: 'No orchestrator is available.' },
  worker_lost: { status: 503, retryable: true, message: 'The orchestrator handling the request was lost.' },
  bus_unavailable: { status: 503, retryable: true, message: 'The message bus is unavailable.' },
  cache_unavailable: { status: 503, retryable: true, message: 'The cache is unavailable.' },
  shutting_down: { status: 503, retryable: true, message: 'The service is shutting down.' },
  overloaded: { status: 503, retryable: true, message: 'Too many requests are waiting for a model; try again later.' },
  upstream_timeout: { status: 504, retryable: true, message: 'The model provider timed out.' },
  upstream_unavailable: { status: 503, retryable: true, message: 'No model provider could answer.' },
  deadline_exceeded: { status: 504, retryable: true, message: 'The request ran past its deadline.' },
  unknown_job_kind: { status: 400, retryable: false, message: 'Unknown job kind.' },
  too_many_items: { status: 400, retryable: false, message: 'The job input has too many items or sections.' },
  webhook_not_allowed: { status: 400, retryable: false, message: 'The webhook URL is not allowed.' },
  job_finished: { status: 409, retryable: false, message: 'The job has already finished.' },
  jobs_unavailable: { status: 503, retryable: true, message: 'Background jobs are unavailable.' },
  // Identity and admission (the gateway's door).
  unauthorized: { status: 401, retryable: false, message: 'Authentication required: send Authorization: Bearer <token or API key>.' },
  forbidden: { status: 403, retryable: false, message: 'This needs an admin role or key.' },
  user_mismatch: { status: 403, retryable: false, message: 'user_id differs from the authenticated user.' },
  origin_not_allowed: { status: 403, retryable: false, message: 'This origin may not open a WebSocket here.' },
  too_deep: { status: 400, retryable: false, message: 'The JSON nests too deeply.' },
  token_rate_limited: { status: 429, retryable: true, message: 'Too many model tokens this minute.' },
  budget_exceeded: { status: 429, retryable: true, message: 'The daily spend budget is used up.' },
  too_many_connections: { status: 429, retryable: true, message: 'Too many WebSocket connections for this user.' },
  limiter_unavailable: { status: 503, retryable: true, message: 'The rate limiter is unavailable; requests are refused until it is back.' },
  auth_unavailable: { status: 503, retryable: true, message: 'Credentials cannot be checked right now.' },
  // Resuming a stream (a reconnected client asks for what it missed).
  resume_unknown: { status: 404, retryable: false, message: 'No answer with this request id is known.' },
  resume_expired: { status: 410, retryable: false, message: 'The answer is past its retention window: its chunks are gone.' },
  resume_forbidden: { status: 403, retryable: false, message: 'Only the user who asked may resume this answer.' },
  // Collaboration sessions (several members on one session).
  not_a_member: { status: 403, retryable: false, message: 'You are not a member of this session.' },
  session_busy: { status: 409, retryable: true, message: 'Another member\'s turn is being answered on this session; send again when its response arrives.' },
  session_full: { status: 409, retryable: false, message: 'The session has as many members as it may have.' },
  invalid_join_token: { status: 403, retryable: false, message: 'The join token is not this session\'s.' },
  sessions_unavailable: { status: 503, retryable: true, message: 'Collaboration sessions cannot be reached right now.' },
} as const satisfies Record<string, { status: number; retryable: boolean; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export const isErrorCode = (code: string): code is ErrorCode => Object.hasOwn(ERROR_CATALOG, code);

/** An error with a stable code; each transport maps it to JSON or an `error` frame. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;
  /** When trying again makes sense: REST sends it as `Retry-After`, streams as `retry_after_ms`. */
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message?: string, opts?: { cause?: unknown; details?: Record<string, unknown>; retryAfterMs?: number }) {
    super(message ?? ERROR_CATALOG[code].message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CATALOG[code].status;
    this.retryable = ERROR_CATALOG[code].retryable;
    this.details = opts?.details;
    this.retryAfterMs = opts?.retryAfterMs;
  }

  /** The JSON body a client sees: never a stack or a host name. */
  toJSON(requestId?: string): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        retryable: this.retryable,
        ...(this.details ? { details: this.details } : {}),
        ...(this.retryAfterMs === undefined ? {} : { retry_after_ms: this.retryAfterMs }),
        ...(requestId ? { request_id: requestId } : {}),
      },
    };
  }
}

export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.enum(Object.keys(ERROR_CATALOG) as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    retryable: z.boolean(),
    details: z.record(z.string(), z.unknown()).optional(),
    /** Present on `overloaded` (and sent as the `Retry-After` header, in seconds). */
    retry_after_ms: z.number().int().nonnegative().optional(),
    request_id: z.string().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** Any thrown value as an AppError; unknown failures become `internal` and keep their cause for the logs. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  return new AppError('internal', undefined, { cause: err });
}
