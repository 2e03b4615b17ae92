import { z } from 'zod';
import {
  CacheHealthSchema,
  CacheInvalidateResultSchema,
  CachePatternSchema,
  CacheStatsSchema,
  ChatRequestSchema,
  ChatResponseSchema,
  ErrorBodySchema,
  HISTORY_DEFAULT_TURNS,
  HISTORY_MAX_TURNS,
  SESSIONS_DEFAULT,
  SESSIONS_MAX,
  SessionHistorySchema,
  SessionListSchema,
  TASK_TYPES,
} from '@actionedx/shared';
import { jobPathsDoc, jobSchemasDoc } from '../jobs/job-openapi.js';
import { sessionPathsDoc, sessionSchemasDoc } from '../sessions/session-openapi.js';
import { ApiKeyCreateSchema } from '../auth/api-key.js';
import { openAiPathsDoc, openAiSchemasDoc } from '../openai-compat/openai-openapi.js';
import { GATEWAY_VERSION } from '../version.js';
import { TASK_ENDPOINTS } from './task-requests.js';

/** A request body as a client writes it: defaults are optional, refinements are checked by the server. */
const input = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
const output = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any', target: 'draft-2020-12' });

const json = (schema: object) => ({ 'application/json': { schema } });
const errors = {
  '400': { description: 'Invalid input; `error.code` says which', content: json({ $ref: '#/components/schemas/Error' }) },
  '413': { description: 'Body over the size limit (`payload_too_large`)', content: json({ $ref: '#/components/schemas/Error' }) },
  '415': { description: 'Not JSON (`unsupported_media_type`)', content: json({ $ref: '#/components/schemas/Error' }) },
  '503': { description: 'No orchestrator, bus down or shutting down (retryable)', content: json({ $ref: '#/components/schemas/Error' }) },
};
const err = (description: string) => ({ description, content: json({ $ref: '#/components/schemas/Error' }) });
/** The answers of the door: authentication, ownership, admin role. */
const door = {
  '401': err('No valid token or API key (`unauthorized`); `WWW-Authenticate: Bearer`'),
  '403': err('`user_id` names another user (`user_mismatch`), or an admin role is needed (`forbidden`)'),
};
const admitted = {
  ...door,
  '429': err(
    'Over a limit: `rate_limited` (requests/min), `token_rate_limited` (model tokens/min) or `budget_exceeded` (USD/day); `Retry-After` and the RateLimit fields say when',
  ),
  '503': err('No orchestrator, bus down, shutting down, or the rate limiter unavailable (`limiter_unavailable`: refused, never unlimited)'),
};
const adminOnly = { '401': door['401'], '403': err('Not an administrator (`forbidden`)') };
const chatAnswer = {
  '200': {
    description:
      'The answer; with `Accept: text/event-stream`, events `start`, `chunk {seq, content}`, `reset`, `done` (this object) or `error`, each with `id: <request_id>:<last chunk seq>` (resume with `GET /api/assistant/streams/{request_id}`)',
    content: { ...json({ $ref: '#/components/schemas/ChatResponse' }), 'text/event-stream': { schema: { type: 'string' } } },
    headers: {
      'RateLimit-Policy': { description: 'draft-ietf-httpapi-ratelimit-headers-10: the caller\'s quotas', schema: { type: 'string' } },
      RateLimit: { description: 'draft-ietf-httpapi-ratelimit-headers-10: what is left of each, and when it resets', schema: { type: 'string' } },
    },
  },
  ...errors,
  ...admitted,
};

/**
 * The gateway's API as OpenAPI 3.1, generated from the same zod schemas that validate requests, so the
 * document cannot drift from what the server accepts.
 */
export function buildOpenApi(): Record<string, unknown> {
  const tasks = Object.fromEntries(
    TASK_ENDPOINTS.map((t) => [
      t.path,
      {
        post: {
          summary: `${t.title} (task type ${t.taskType}, cached with its TTL)`,
          requestBody: { required: true, content: json(input(t.schema)) },
          responses: chatAnswer,
        },
      },
    ]),
  );
  return {
    openapi: '3.1.0',
    info: { title: 'ActionEDx assistant gateway', version: GATEWAY_VERSION },
    paths: mergePaths({
      '/api/assistant/chat': {
        post: {
          summary: 'One chat turn, answered in JSON or streamed as Server-Sent Events',
          requestBody: { required: true, content: json({ $ref: '#/components/schemas/ChatRequest' }) },
          responses: chatAnswer,
        },
      },
      ...tasks,
      '/api/assistant/streams/{request_id}': {
        get: {
          summary:
            'Resume a streamed chat answer (SSE, any replica) after the event named by `Last-Event-ID: <request_id>:<seq>` (or `?last_seq=`): the missed `chunk` events, the rest live, `done`; only the user who asked may',
          parameters: [
            { name: 'request_id', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
            { name: 'Last-Event-ID', in: 'header', description: 'The `id` of the last event received: `<request_id>:<seq>`', schema: { type: 'string' } },
            { name: 'last_seq', in: 'query', description: 'The last chunk `seq` received (-1: none), when no Last-Event-ID is sent', schema: { type: 'integer', minimum: -1 } },
          ],
          responses: {
            '200': {
              description:
                'Events `start`, `chunk {seq, content}`, `reset`, `done` (a ChatResponse), `error`, or `resume_failed {code, message, response?}` when the chunks ran out; every event has `id: <request_id>:<seq>`',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            '400': errors['400'],
            '401': door['401'],
            '403': err('Another user\'s answer (`resume_forbidden`)'),
            '404': err('No answer with this id is known (`resume_unknown`)'),
            '410': {
              description: 'Past the retention window (`resume_expired`); `response` holds the final answer when it is known',
              content: json({ allOf: [{ $ref: '#/components/schemas/Error' }, { type: 'object', properties: { response: { $ref: '#/components/schemas/ChatResponse' } } }] }),
            },
          },
        },
      },
      '/api/cache/stats': { get: { summary: 'Cluster-wide cache figures (admin)', responses: { '200': { description: 'Figures', content: json(output(CacheStatsSchema)) }, ...adminOnly, '503': errors['503'] } } },
      '/api/cache/invalidate': {
        post: {
          summary: 'Delete cached answers by pattern (`ai_cache:*`) and/or task type (admin)',
          parameters: [
            {
              name: 'pattern',
              in: 'query',
              description: '`ai_cache:` then letters, digits, `_ : -` and the wildcards `* ?`; `*` alone is every answer',
              schema: input(CachePatternSchema),
            },
            { name: 'task_type', in: 'query', schema: { type: 'string', enum: [...TASK_TYPES] } },
          ],
          responses: { '200': { description: 'How many were deleted', content: json(output(CacheInvalidateResultSchema)) }, '400': errors['400'], ...adminOnly, '503': errors['503'] },
        },
      },
      '/api/cache/health': { get: { summary: 'Cache backend health (admin)', responses: { '200': { description: 'Health', content: json(output(CacheHealthSchema)) }, ...adminOnly } } },
      '/api/sessions': {
        get: {
          summary: "The caller's sessions that have turns, most recently used first (from the conversation store)",
          parameters: [
            { name: 'limit', in: 'query', description: `Sessions returned (default ${SESSIONS_DEFAULT})`, schema: { type: 'integer', minimum: 1, maximum: SESSIONS_MAX } },
            { name: 'user_id', in: 'query', description: 'Open mode only: the user (with a credential, its user)', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'The sessions', content: json(output(SessionListSchema)) }, '400': errors['400'], '401': door['401'], '403': door['403'], '503': errors['503'] },
        },
      },
      '/api/sessions/{session_id}/history': {
        get: {
          summary: "The caller's own turns of a session, oldest first (from the conversation store)",
          parameters: [
            { name: 'session_id', in: 'path', required: true, schema: { type: 'string', maxLength: 128, pattern: '^[A-Za-z0-9_.:@-]+$' } },
            { name: 'limit', in: 'query', description: `Newest turns returned (default ${HISTORY_DEFAULT_TURNS})`, schema: { type: 'integer', minimum: 1, maximum: HISTORY_MAX_TURNS } },
            { name: 'user_id', in: 'query', description: 'Open mode only: the user (with a credential, its user)', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'The turns', content: json(output(SessionHistorySchema)) }, '400': errors['400'], '401': door['401'], '403': door['403'], '503': errors['503'] },
        },
      },
      '/api/health': { get: { summary: 'Health with each dependency (no host names)', security: [], responses: { '200': { description: 'healthy or degraded' }, '503': { description: 'unhealthy' } } } },
      '/healthz': { get: { summary: 'Liveness', security: [], responses: { '200': { description: 'alive' } } } },
      '/readyz': { get: { summary: 'Readiness (503 while the bus is down or shutting down)', security: [], responses: { '200': { description: 'ready' }, '503': { description: 'not ready' } } } },
      '/api/websocket/stats': { get: { summary: "This gateway's WebSocket figures; the sessions, with their users, for administrators only", responses: { '200': { description: 'Figures' }, '401': door['401'] } } },
      '/api/metrics': { get: { summary: 'Prometheus text format (admin; Prometheus scrapes /metrics on the ops port)', responses: { '200': { description: 'Metrics', content: { 'text/plain': { schema: { type: 'string' } } } }, ...adminOnly } } },
      '/api/admin/breakers': {
        get: {
          summary: "The model targets' circuit breakers as one orchestrator replica sees them (admin; each replica has its own)",
          responses: { '200': { description: '`{model_targets: {<target>: closed|open|half_open}, scope}`' }, ...adminOnly, '503': errors['503'] },
        },
      },
      '/api/admin/keys': {
        post: {
          summary: 'Create an API key (admin); its secret is in the answer, this once',
          requestBody: { required: true, content: json(input(ApiKeyCreateSchema)) },
          responses: { '201': { description: 'The key: `{id, key, user_id, role, ...}`' }, '400': errors['400'], ...adminOnly },
        },
        get: {
          summary: 'List API keys (admin), never their secrets',
          parameters: [{ name: 'user_id', in: 'query', schema: { type: 'string' } }],
          responses: { '200': { description: '`{keys: [...]}`' }, ...adminOnly },
        },
      },
      '/api/admin/keys/{id}': {
        delete: {
          summary: 'Revoke an API key (admin)',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{16}$' } }],
          responses: { '200': { description: 'The revoked key' }, '404': err('No such key'), ...adminOnly },
        },
      },
      '/': { get: { summary: 'The web page: chat, sessions, jobs and, for administrators, the operator view', security: [], responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } } } },
      '/assets/{file}': {
        get: {
          summary: "The web page's ES modules and style sheet (revalidated: ETag, Last-Modified)",
          security: [],
          parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'JavaScript or CSS' }, '404': err('No such file (`not_found`)') },
        },
      },
      '/api/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } } } },
      '/api/asyncapi.json': { get: { summary: 'The WebSocket protocol (/ws/assistant/{session_id}) as AsyncAPI 3.0', security: [], responses: { '200': { description: 'AsyncAPI 3.0', content: json({ type: 'object' }) } } } },
      ...jobPathsDoc(),
      ...openAiPathsDoc(),
    }, sessionPathsDoc()),
    // With AUTH_MODE=required (the gateway's default) every operation but health and these documents needs one
    // of these; `user_id` then comes from the credential and may be left out of bodies.
    security: [{ bearer: [] }, { apiKey: [] }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'A JWT (HS256/RS256/ES256/EdDSA as configured) or an API key `axk_<id>_<secret>`' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key `axk_<id>_<secret>`' },
      },
      schemas: {
        ChatRequest: input(ChatRequestSchema),
        ChatResponse: output(ChatResponseSchema),
        Error: output(ErrorBodySchema),
        ...jobSchemasDoc(),
        ...openAiSchemasDoc(),
        ...sessionSchemasDoc(),
      },
    },
  };
}

/** Path items of `extra` added to `paths`; a path in both keeps the operations of each (GET and POST /api/sessions). */
function mergePaths(paths: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...paths };
  for (const [path, item] of Object.entries(extra)) {
    merged[path] = { ...(merged[path] as Record<string, unknown> | undefined), ...(item as Record<string, unknown>) };
  }
  return merged;
}
