import express, { type RequestHandler } from 'express';
import { AppError, LIMITS, jsonDepthExceeds } from '@actionedx/shared';
import { reenterContext } from './request-context.js';

const JSON_TYPES = ['application/json', 'application/*+json'];

const isJsonType = (header: string | undefined): boolean => {
  const type = header?.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
};

/** A parsed body nesting deeper than `maxDepth` is refused here, before any recursive walk can meet it. */
export const depthGuard =
  (maxDepth: number): RequestHandler =>
  (req, _res, next) => {
    next(
      jsonDepthExceeds(req.body, maxDepth)
        ? new AppError('too_deep', `The body nests deeper than ${maxDepth} levels.`, { details: { max_depth: maxDepth } })
        : undefined,
    );
  };

/**
 * A JSON body of at most `limitBytes` and `maxDepth` levels: anything else is 415, 413 or 400, through the
 * error mapper.
 */
export function jsonBody(limitBytes: number, maxDepth: number = LIMITS.jsonMaxDepth): RequestHandler[] {
  const requireJson: RequestHandler = (req, _res, next) => {
    next(isJsonType(req.headers['content-type']) ? undefined : new AppError('unsupported_media_type'));
  };
  return [requireJson, express.json({ limit: limitBytes, type: JSON_TYPES, strict: true }), reenterContext, depthGuard(maxDepth)];
}
