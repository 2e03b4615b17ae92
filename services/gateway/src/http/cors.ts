import corsMiddleware from 'cors';
import type { RequestHandler } from 'express';

const ALLOWED_HEADERS = ['content-type', 'accept', 'x-request-id', 'traceparent', 'authorization', 'x-cache-bypass', 'cache-control'];
const EXPOSED_HEADERS = ['x-request-id', 'traceparent', 'x-cache'];

/**
 * Cross-origin access for browser clients (the seed's React front end runs on another port), by the `cors`
 * package. `origins`: exact origins, or `*` for any. A request without an Origin, or from another origin,
 * passes untouched (no CORS headers, so the browser blocks it); an allowed preflight is answered 204.
 */
export function cors(origins: readonly string[]): RequestHandler {
  const any = origins.includes('*');
  const allowed = new Set(origins);
  return corsMiddleware({
    origin: (origin, callback) => {
      if (origin === undefined || (!any && !allowed.has(origin))) return callback(null, false);
      callback(null, any ? '*' : origin);
    },
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
    optionsSuccessStatus: 204,
  });
}
