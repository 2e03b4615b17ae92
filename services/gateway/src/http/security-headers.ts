import type { RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * Security headers on every response, by helmet: an API's content security policy (nothing may load,
 * nothing may frame it), nosniff, no referrer, HSTS, same-origin resource and opener policies. And
 * `Cache-Control: no-store`: answers are per user and must not sit in shared caches (streams set their own).
 */
export function securityHeaders(): RequestHandler[] {
  const noStore: RequestHandler = (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  };
  return [
    helmet({
      contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
      referrerPolicy: { policy: 'no-referrer' },
    }),
    noStore,
  ];
}
