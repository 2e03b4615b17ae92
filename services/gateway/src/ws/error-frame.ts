import { toAppError, type WsError } from '@actionedx/shared';

/** The one error mapper of the WebSocket transport: an AppError's fields, never a stack. */
export function toErrorFrame(err: unknown, requestId?: string): WsError {
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
