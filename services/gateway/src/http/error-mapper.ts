import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, toAppError, type ErrorCode, type Logger } from '@actionedx/shared';
import { contextOf } from './request-context.js';

interface BodyParserError {
  type: string;
  status?: number;
  limit?: number;
}

/** Client errors raised by express or its parts (http-errors), by status. */
const CLIENT_ERROR_CODES: Record<number, ErrorCode> = {
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

const clientStatusOf = (err: unknown): number | undefined => {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
};

const isBodyParserError = (err: unknown): err is BodyParserError =>
  typeof err === 'object' && err !== null && typeof (err as { type?: unknown }).type === 'string';

/** Any error of the HTTP pipeline as an AppError (body-parser's errors by their type). */
export function toHttpError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isBodyParserError(err)) {
    switch (err.type) {
      case 'entity.parse.failed':
        return new AppError('invalid_json');
      case 'entity.too.large':
        return new AppError('payload_too_large', `The body is larger than ${err.limit ?? 'the limit of'} bytes.`);
      case 'charset.unsupported':
      case 'encoding.unsupported':
        return new AppError('unsupported_media_type', 'Send application/json in UTF-8, without content encoding.');
      case 'request.aborted':
      case 'request.size.invalid':
        return new AppError('invalid_json', 'The body ended before its announced length.');
    }
  }
  const status = clientStatusOf(err);
  // A client's mistake caught by express itself is still the client's mistake, never a 500.
  if (status !== undefined) return new AppError(CLIENT_ERROR_CODES[status] ?? 'validation_failed');
  return toAppError(err);
}

/** The one error mapper of the HTTP transport: an AppError's JSON with the request id, never a stack. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    const appErr = toHttpError(err);
    const ctx = contextOf(res);
    if (appErr.code === 'internal') logger.error({ err: appErr.cause ?? appErr }, 'request failed');
    else if (appErr.status >= 500) logger.warn({ code: appErr.code }, 'request failed');
    else logger.debug({ code: appErr.code, details: appErr.details }, 'request rejected');
    if (res.headersSent) {
      // A stream already under way ends here; its status line is long gone.
      res.end();
      return;
    }
    // `overloaded` says when to come back (whole seconds, as HTTP has it).
    if (appErr.retryAfterMs !== undefined) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(appErr.retryAfterMs / 1000))));
    res.status(appErr.status).json(appErr.toJSON(ctx?.request_id));
  };
}

/** Last route: anything unmatched is a JSON 404. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(new AppError('not_found', `No route for ${req.method} ${req.path.slice(0, 200)}.`));
};

/** For a known path with another method: 405 with the methods it has. */
export const methodNotAllowed =
  (...allowed: string[]): RequestHandler =>
  (_req, res, next) => {
    res.setHeader('Allow', allowed.join(', '));
    next(new AppError('method_not_allowed'));
  };
