import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, type ErrorCode, type Logger } from '@actionedx/shared';
import { toHttpError } from '../http/error-mapper.js';
import { contextOf } from '../http/request-context.js';

/** The error body OpenAI's API sends, which its SDKs turn into `APIError` subclasses by status. */
export interface OpenAiErrorBody {
  error: { message: string; type: string; code: string | null; param: string | null; request_id?: string };
}

/**
 * An error only this API has (an unknown model, a parameter the platform does not support): a status, and the
 * `type`, `code` and `param` of OpenAI's error body.
 */
export class OpenAiRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly type = 'invalid_request_error',
  ) {
    super(message);
    this.name = 'OpenAiRequestError';
  }
}

export const modelNotFound = (model: string): OpenAiRequestError =>
  new OpenAiRequestError(
    404,
    'model_not_found',
    `The model '${model.slice(0, 200)}' does not exist: use an alias such as 'actionedx/realtime_tutoring' or a model the routing allows (GET /v1/models).`,
    'model',
  );

/** Platform codes of a 429 as OpenAI tells them apart: per-request limits, token limits, spend quota. */
const RATE_LIMITS: Partial<Record<ErrorCode, { type: string; code: string }>> = {
  rate_limited: { type: 'requests', code: 'rate_limit_exceeded' },
  token_rate_limited: { type: 'tokens', code: 'rate_limit_exceeded' },
  too_many_connections: { type: 'requests', code: 'rate_limit_exceeded' },
  budget_exceeded: { type: 'insufficient_quota', code: 'insufficient_quota' },
};

/** Fields of the platform's chat request, named as the OpenAI request names them. */
const PARAMS: Record<string, string> = {
  message: 'messages',
  history: 'messages',
  context: 'messages',
  user_id: 'user',
};

const paramOf = (err: AppError): string | null => {
  const field = err.details?.field;
  if (typeof field !== 'string' || field === '(body)') return null;
  return PARAMS[field.split('.')[0]!] ?? field;
};

/** Any error of this API as a status and OpenAI's error body (never a stack or a host name). */
export function toOpenAiError(err: unknown, requestId?: string): { status: number; body: OpenAiErrorBody; retryAfterMs?: number } {
  const withId = (e: OpenAiErrorBody['error']): OpenAiErrorBody => ({ error: requestId ? { ...e, request_id: requestId } : e });
  if (err instanceof OpenAiRequestError) {
    return { status: err.status, body: withId({ message: err.message, type: err.type, code: err.code, param: err.param }) };
  }
  const app = toHttpError(err);
  const { status } = app;
  let type: string;
  let code: string = app.code;
  if (status === 401) {
    type = 'invalid_request_error';
    code = 'invalid_api_key';
  } else if (status === 403) type = 'permission_error';
  else if (status === 429) ({ type, code } = RATE_LIMITS[app.code] ?? { type: 'requests', code: 'rate_limit_exceeded' });
  else if (status === 404) {
    type = 'invalid_request_error';
    code = 'unknown_url';
  } else type = status >= 500 ? 'server_error' : 'invalid_request_error';
  return {
    status,
    body: withId({ message: app.message, type, code, param: paramOf(app) }),
    ...(app.retryAfterMs === undefined ? {} : { retryAfterMs: app.retryAfterMs }),
  };
}

/**
 * The error mapper of `/v1`: OpenAI's error body with the right status, `Retry-After` when trying again makes
 * sense. Errors of other paths go on to the platform's own mapper.
 */
export function openAiErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (!req.path.startsWith('/v1/')) return next(err);
    const ctx = contextOf(res);
    const { status, body, retryAfterMs } = toOpenAiError(err, ctx?.request_id);
    if (status === 500) logger.error({ err: (err as { cause?: unknown }).cause ?? err }, 'request failed');
    else if (status >= 500) logger.warn({ code: body.error.code }, 'request failed');
    else logger.debug({ code: body.error.code, param: body.error.param }, 'request rejected');
    if (res.headersSent) {
      res.end();
      return;
    }
    if (retryAfterMs !== undefined && !res.hasHeader('Retry-After')) {
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
    }
    res.status(status).json(body);
  };
}

/** Any other `/v1/...` URL: OpenAI's 404 `unknown_url`. */
export const unknownUrl: RequestHandler = (req, _res, next) => {
  next(new AppError('not_found', `Unknown request URL: ${req.method} ${req.path.slice(0, 200)}.`));
};
