import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { AppError } from '@actionedx/shared';
import type { Authenticator } from './authenticator.js';
import { isAdmin, principalOf, setPrincipal } from './principal.js';

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * The credential of a request: `Authorization: Bearer <JWT or API key>`, or `X-API-Key: <key>`. The
 * WebSocket upgrade also takes `?access_token=` (RFC 6750 2.3), for browsers, which cannot set headers on
 * `new WebSocket(url)`. Never logged: the access log records the route, not the URL.
 */
export function credentialOf(req: IncomingMessage, opts: { query?: URLSearchParams } = {}): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) return BEARER.exec(auth)?.[1] ?? '';
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string') return apiKey.trim();
  return opts.query?.get('access_token') ?? undefined;
}

/** The `WWW-Authenticate` challenge of a 401 (RFC 6750 3). */
export const challenge = (err: AppError, hadCredential: boolean): string =>
  hadCredential && err.code === 'unauthorized' ? 'Bearer realm="actionedx", error="invalid_token"' : 'Bearer realm="actionedx"';

/**
 * Resolves the caller of every request that reaches it and puts the `Principal` on `res.locals`
 * (`principalOf(res)`). Required mode: no valid credential, no further (401). Open mode: a principal
 * without a user; the body names the user.
 */
export function authenticate(authenticator: Authenticator): RequestHandler {
  return (req, res, next) => {
    if (authenticator.mode === 'open') {
      setPrincipal(res, authenticator.openPrincipal());
      return next();
    }
    const credential = credentialOf(req);
    authenticator.authenticate(credential, 'http').then(
      (principal) => {
        setPrincipal(res, principal);
        next();
      },
      (err: unknown) => {
        if (err instanceof AppError && err.status === 401) res.setHeader('WWW-Authenticate', challenge(err, credential !== undefined));
        next(err);
      },
    );
  };
}

/** Administrators only (`forbidden` otherwise); in open mode everyone. */
export const requireAdmin: RequestHandler = (_req, res, next) => {
  next(isAdmin(principalOf(res)) ? undefined : new AppError('forbidden'));
};
