import { z } from 'zod';
import { SessionCreateSchema, SessionCreatedSchema, SessionInviteSchema, SessionJoinSchema, SessionMembersSchema } from '@actionedx/shared';

const doc = (schema: z.ZodType, io: 'input' | 'output') => z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const error = (description: string) => ({ description, content: json(ref('Error')) });
const sessionId = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^cs_[0-9a-f]{32}$' } };
const openCaller = {
  name: 'user_id',
  in: 'query',
  required: false,
  schema: { type: 'string', maxLength: 128 },
  description: 'Without authentication (AUTH_MODE=open) only: the caller',
};
const common = {
  '401': error('No valid token or API key (`unauthorized`)'),
  '404': error('No such session (`not_found`)'),
  '503': error('The session store cannot be reached (`sessions_unavailable`, retryable): membership is never guessed'),
};

/** The collaboration session schemas, generated from the zod schemas that validate them. */
export function sessionSchemasDoc(): Record<string, unknown> {
  return {
    SessionCreate: doc(SessionCreateSchema, 'input'),
    SessionCreated: doc(SessionCreatedSchema, 'output'),
    SessionInvite: doc(SessionInviteSchema, 'input'),
    SessionJoin: doc(SessionJoinSchema, 'input'),
    SessionMembers: doc(SessionMembersSchema, 'output'),
  };
}

/** `/api/sessions` and its sub-paths. */
export function sessionPathsDoc(): Record<string, unknown> {
  return {
    '/api/sessions': {
      post: {
        summary: 'Create a collaboration session; the caller owns it. Members connect to `/ws/assistant/{session_id}`',
        requestBody: { required: true, content: json(ref('SessionCreate')) },
        responses: {
          '201': { description: 'The session, with its join token (shown this once, to the owner)', content: json(ref('SessionCreated')) },
          '400': error('Invalid input (`validation_failed`)'),
          '401': common['401'],
          '503': common['503'],
        },
      },
    },
    '/api/sessions/{id}/members': {
      post: {
        summary: 'The owner invites a user by id',
        parameters: [sessionId, openCaller],
        requestBody: { required: true, content: json(ref('SessionInvite')) },
        responses: {
          '201': { description: 'Added: `{session_id, user_id, role}`; every member gets a `system` `member_joined` and a `presence`' },
          '200': { description: 'Already a member' },
          '400': error('Invalid input (`validation_failed`)'),
          ...common,
          '403': error('Not a member (`not_a_member`), or a member who is not the owner (`forbidden`)'),
          '409': error('SESSION_MAX_MEMBERS reached (`session_full`)'),
        },
      },
      get: {
        summary: 'The members, each with whether they are online and their live sockets across every gateway (members only)',
        parameters: [sessionId, openCaller],
        responses: { '200': { description: 'Members', content: json(ref('SessionMembers')) }, ...common, '403': error('Not a member (`not_a_member`)') },
      },
    },
    '/api/sessions/{id}/join': {
      post: {
        summary: 'Join with the join token (anyone who has it)',
        parameters: [sessionId, openCaller],
        requestBody: { required: true, content: json(ref('SessionJoin')) },
        responses: {
          '200': { description: '`{session_id, user_id, role, mode, members}`' },
          '400': error('Invalid input (`validation_failed`)'),
          ...common,
          '403': error('Wrong token (`invalid_join_token`)'),
          '409': error('SESSION_MAX_MEMBERS reached (`session_full`)'),
        },
      },
    },
    '/api/sessions/{id}/members/{user_id}': {
      delete: {
        summary: "The owner removes a member, or a member leaves; the removed user's sockets are closed (4403)",
        parameters: [sessionId, { name: 'user_id', in: 'path', required: true, schema: { type: 'string', maxLength: 128 } }, openCaller],
        responses: {
          '204': { description: 'Removed' },
          ...common,
          '403': error('Not a member (`not_a_member`), another member removing someone (`forbidden`), or the owner leaving (`forbidden`)'),
        },
      },
    },
  };
}
