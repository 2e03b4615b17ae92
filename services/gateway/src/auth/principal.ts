import type { Request, Response } from 'express';
import { AppError, UserIdSchema } from '@actionedx/shared';
import type { CallerLimits, Role } from '../admission/limits.js';

/** How the caller proved who they are. `open`: they did not (AUTH_MODE=open): the body names the user. */
export type AuthMethod = 'jwt' | 'api_key' | 'admin_key' | 'open';

/**
 * The caller of one HTTP request or WebSocket: resolved once, at the door (the `authenticate` middleware,
 * the WebSocket upgrade), and read everywhere else through `principalOf` / `userIdOf`.
 */
export interface Principal {
  /** Undefined only in open mode, where the body or query names the user. */
  readonly user_id: string | undefined;
  readonly role: Role;
  readonly method: AuthMethod;
  /** The API key's id (never its secret), for API-key callers. */
  readonly key_id?: string | undefined;
  /** What this caller may consume: the role's limits with the key's overrides. */
  readonly limits: CallerLimits;
  /** When the credential stops being valid (a JWT's `exp`), epoch ms. */
  readonly expires_at?: number | undefined;
}

const PRINCIPAL_KEY = 'principal';

export function setPrincipal(res: Response, principal: Principal): void {
  res.locals[PRINCIPAL_KEY] = principal;
}

/** The caller of this request, as the `authenticate` middleware resolved it. */
export function principalOf(res: Response): Principal {
  const p = res.locals[PRINCIPAL_KEY] as Principal | undefined;
  // A route reached without the middleware is a wiring bug, never an anonymous caller.
  if (p === undefined) throw new AppError('internal', undefined, { cause: new Error('no principal: authenticate() did not run') });
  return p;
}

/** An administrator, or anyone in open mode (the demo has no identities to tell apart). */
export const isAdmin = (p: Principal): boolean => p.method === 'open' || p.role === 'admin';

/**
 * The user a request acts for: the authenticated user; in open mode the one the request names (`user_id`
 * in the JSON body of a POST, `?user_id=` otherwise). The one accessor for routes that own resources by
 * user (sessions, jobs): `jobs/caller.ts`'s `callerOf(req, res)` can become this function.
 */
export function userIdOf(req: Request, res: Response): string {
  const p = principalOf(res);
  if (p.method !== 'open') {
    const named = namedUserId(req);
    if (named !== undefined && named !== p.user_id) throw new AppError('user_mismatch');
    return p.user_id!;
  }
  const raw = namedUserId(req);
  if (raw === undefined) {
    throw new AppError('validation_failed', 'user_id: required (in the body of a POST, ?user_id= otherwise).', { details: { field: 'user_id' } });
  }
  const parsed = UserIdSchema.safeParse(raw);
  if (!parsed.success) {
    throw new AppError('validation_failed', 'user_id may only hold letters, digits and _ . : @ - (at most 128).', { details: { field: 'user_id' } });
  }
  return parsed.data;
}

function namedUserId(req: Request): unknown {
  const body = req.body as unknown;
  const fromBody = req.method === 'POST' && typeof body === 'object' && body !== null ? (body as { user_id?: unknown }).user_id : undefined;
  return fromBody ?? (req.query as Record<string, unknown>).user_id;
}

/**
 * A JSON body with the caller's identity in it: the authenticated user fills in `user_id`, and a body that
 * names another user is refused (`user_mismatch`). Open mode: the body as it is.
 */
export function bindCaller(body: unknown, principal: Principal): unknown {
  if (principal.method === 'open' || typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const named = (body as { user_id?: unknown }).user_id;
  if (named !== undefined && named !== principal.user_id) throw new AppError('user_mismatch');
  return { ...body, user_id: principal.user_id };
}
