import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import {
  AppError,
  SessionCreateSchema,
  SessionInviteSchema,
  SessionJoinSchema,
  UserIdSchema,
  type Logger,
} from '@actionedx/shared';
import { principalOf } from '../auth/principal.js';
import { parseOrThrow } from '../chat/request-validation.js';
import { methodNotAllowed } from '../http/error-mapper.js';
import { jsonBody } from '../http/json-body.js';
import type { CollabSession } from './collab-store.js';
import { isCollabSessionId, type SessionHub } from './session-hub.js';

export interface SessionRoutesDeps {
  hub: SessionHub;
  bodyLimitBytes: number;
  jsonMaxDepth: number;
  logger: Logger;
}

/**
 * Who calls: the authenticated user. Open mode (no authentication): `?user_id=`, or the body's `user_id` where
 * the body names the caller (create, join); a body naming someone else with authentication on is refused.
 */
function callerOf(req: Request, res: Response, bodyNamesCaller: boolean): string {
  const p = principalOf(res);
  const fromBody = bodyNamesCaller ? (req.body as { user_id?: unknown } | undefined)?.user_id : undefined;
  if (p.method !== 'open') {
    if (fromBody !== undefined && fromBody !== p.user_id) throw new AppError('user_mismatch');
    return p.user_id!;
  }
  const named = fromBody ?? (req.query as Record<string, unknown>).user_id;
  const parsed = UserIdSchema.safeParse(named);
  if (!parsed.success) {
    throw new AppError('validation_failed', 'user_id: required without authentication (?user_id=, or in the body).', { details: { field: 'user_id' } });
  }
  return parsed.data;
}

/** A collaboration session id from the path; anything else cannot be one (404, as an unknown id). */
function sessionIdOf(req: Request): string {
  const id = String(req.params.id);
  if (!isCollabSessionId(id)) throw new AppError('not_found', 'No such session.');
  return id;
}

const sameToken = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Store failures are 503 `sessions_unavailable`, never a guess about who is a member. */
async function guarded<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw err instanceof AppError ? err : new AppError('sessions_unavailable', undefined, { cause: err });
  }
}

/**
 * Collaboration sessions: `POST /api/sessions` (create; the caller owns it), `POST /api/sessions/{id}/members`
 * (the owner invites a user), `POST /api/sessions/{id}/join` (anyone with the join token),
 * `DELETE /api/sessions/{id}/members/{user_id}` (the owner removes, or a member leaves), `GET
 * /api/sessions/{id}/members` (members only: who is in, who is online across gateways).
 */
export function sessionRoutes(deps: SessionRoutesDeps): Router {
  const { hub } = deps;
  const store = hub.store;
  const body = jsonBody(deps.bodyLimitBytes, deps.jsonMaxDepth);
  const router = Router();

  const load = async (id: string): Promise<CollabSession> => {
    const s = await guarded(store.get(id));
    if (s === undefined) throw new AppError('not_found', 'No such session.');
    return s;
  };

  router
    .route('/api/sessions')
    .post(...body, async (req, res) => {
      const input = parseOrThrow(SessionCreateSchema, req.body);
      const owner = callerOf(req, res, true);
      const session: CollabSession = {
        session_id: `cs_${randomBytes(16).toString('hex')}`,
        owner,
        mode: input.mode ?? 'strategist',
        join_token: randomBytes(24).toString('base64url'),
        created_at: new Date().toISOString(),
        ...(input.title !== undefined ? { title: input.title } : {}),
      };
      await guarded(store.create(session));
      deps.logger.info({ session_id: session.session_id }, 'collaboration session created');
      const { created_at: _c, ...shown } = session;
      res.status(201).location(`/api/sessions/${session.session_id}/members`).json({ ...shown, members: await guarded(hub.view(session.session_id)) });
    })
    .all(methodNotAllowed('GET', 'POST'));

  router
    .route('/api/sessions/:id/members')
    .post(...body, async (req, res) => {
      const id = sessionIdOf(req);
      const caller = callerOf(req, res, false);
      const { user_id: invitee } = parseOrThrow(SessionInviteSchema, req.body);
      const session = await load(id);
      if (session.owner !== caller) {
        const role = await guarded(store.role(id, caller));
        throw role === undefined ? new AppError('not_a_member') : new AppError('forbidden', 'Only the owner invites members.');
      }
      const outcome = await guarded(store.addMember(id, invitee, hub.limits.maxMembers));
      if (outcome === 'missing') throw new AppError('not_found', 'No such session.');
      if (outcome === 'full') throw new AppError('session_full', `A session has at most ${hub.limits.maxMembers} members.`, { details: { max_members: hub.limits.maxMembers } });
      if (outcome === 'added') await hub.memberJoined(id, invitee).catch(() => undefined);
      res.status(outcome === 'added' ? 201 : 200).json({ session_id: id, user_id: invitee, role: invitee === session.owner ? 'owner' : 'member' });
    })
    .get(async (req, res) => {
      const id = sessionIdOf(req);
      const caller = callerOf(req, res, false);
      await load(id);
      if ((await guarded(store.role(id, caller))) === undefined) throw new AppError('not_a_member');
      res.json({ session_id: id, members: await guarded(hub.view(id)) });
    })
    .all(methodNotAllowed('GET', 'POST'));

  router
    .route('/api/sessions/:id/join')
    .post(...body, async (req, res) => {
      const id = sessionIdOf(req);
      const { join_token } = parseOrThrow(SessionJoinSchema, req.body);
      const caller = callerOf(req, res, true);
      const session = await load(id);
      if (!sameToken(join_token, session.join_token)) throw new AppError('invalid_join_token');
      const outcome = await guarded(store.addMember(id, caller, hub.limits.maxMembers));
      if (outcome === 'missing') throw new AppError('not_found', 'No such session.');
      if (outcome === 'full') throw new AppError('session_full', `A session has at most ${hub.limits.maxMembers} members.`, { details: { max_members: hub.limits.maxMembers } });
      if (outcome === 'added') await hub.memberJoined(id, caller).catch(() => undefined);
      res.json({
        session_id: id,
        user_id: caller,
        role: caller === session.owner ? 'owner' : 'member',
        mode: session.mode,
        members: await guarded(hub.view(id)),
      });
    })
    .all(methodNotAllowed('POST'));

  router
    .route('/api/sessions/:id/members/:user_id')
    .delete(async (req, res) => {
      const id = sessionIdOf(req);
      const caller = callerOf(req, res, false);
      const target = String(req.params.user_id);
      const session = await load(id);
      if (caller !== session.owner && caller !== target) {
        const role = await guarded(store.role(id, caller));
        throw role === undefined ? new AppError('not_a_member') : new AppError('forbidden', 'Only the owner removes other members.');
      }
      if (target === session.owner) throw new AppError('forbidden', 'The owner cannot leave their session.');
      if (!(await guarded(store.removeMember(id, target)))) throw new AppError('not_found', 'No such member.');
      await hub.memberLeft(id, target).catch(() => undefined);
      res.status(204).end();
    })
    .all(methodNotAllowed('DELETE'));

  return router;
}
