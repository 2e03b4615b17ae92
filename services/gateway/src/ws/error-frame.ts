import { toAppError } from '@actionedx/shared';

/** The `error` message a socket client sees. */
export interface ErrorFrameMessage {
  type: 'error';
  code: string;
  message: string;
  retryable: boolean;
  request_id?: string;
  details?: Record<string, unknown>;
  /** When to try again (`overloaded`). */
  retry_after_ms?: number;
}

/** The one error mapper of the WebSocket transport: an AppError's fields, never a stack. */
export function toErrorFrame(err: unknown, requestId?: string): ErrorFrameMessage {
  const e = toAppError(err);
  return {
    type: 'error',
    code: e.code,
    message: e.message,
    retryable: e.retryable,
    ...(requestId !== undefined ? { request_id: requestId } : {}),
    ...(e.details ? { details: e.details } : {}),
    ...(e.retryAfterMs === undefined ? {} : { retry_after_ms: e.retryAfterMs }),
  };
}
