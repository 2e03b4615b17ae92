import express, { type RequestHandler } from 'express';
import { AppError } from '@actionedx/shared';
import { reenterContext } from './request-context.js';

const JSON_TYPES = ['application/json', 'application/*+json'];

const isJsonType = (header: string | undefined): boolean => {
  const type = header?.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
};

/** A JSON body of at most `limitBytes`: anything else is 415, 413 or 400, through the error mapper. */
export function jsonBody(limitBytes: number): RequestHandler[] {
  const requireJson: RequestHandler = (req, _res, next) => {
    next(isJsonType(req.headers['content-type']) ? undefined : new AppError('unsupported_media_type'));
  };
  return [requireJson, express.json({ limit: limitBytes, type: JSON_TYPES, strict: true }), reenterContext];
}
