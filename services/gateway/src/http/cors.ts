import type { RequestHandler } from 'express';

const ALLOWED_HEADERS = 'content-type, accept, x-request-id, traceparent, authorization';
const EXPOSED_HEADERS = 'x-request-id, traceparent';

/**
 * Cross-origin access for browser clients (the seed's React front end runs on another port).
 * `origins`: exact origins, or `*` for any. Answers preflights itself; does nothing without an Origin.
 */
export function cors(origins: readonly string[]): RequestHandler {
  const any = origins.includes('*');
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (origin === undefined || (!any && !allowed.has(origin))) return next();
    res.setHeader('access-control-allow-origin', any ? '*' : origin);
    if (!any) res.setHeader('vary', 'Origin');
    res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
    if (req.method !== 'OPTIONS') return next();
    res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
    res.setHeader('access-control-allow-headers', ALLOWED_HEADERS);
    res.setHeader('access-control-max-age', '600');
    res.status(204).end();
  };
}
