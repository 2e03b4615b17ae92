import { z } from 'zod';
import {
  CacheHealthSchema,
  CacheInvalidateResultSchema,
  CachePatternSchema,
  CacheStatsSchema,
  ChatRequestSchema,
  ChatResponseSchema,
  ErrorBodySchema,
  TASK_TYPES,
} from '@actionedx/shared';
import { jobPathsDoc, jobSchemasDoc } from '../jobs/job-openapi.js';
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
const chatAnswer = {
  '200': {
    description: 'The answer; with `Accept: text/event-stream`, events `start`, `chunk {seq, content}`, `reset`, `done` (this object) or `error`',
    content: { ...json({ $ref: '#/components/schemas/ChatResponse' }), 'text/event-stream': { schema: { type: 'string' } } },
  },
  ...errors,
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
    paths: {
      '/api/assistant/chat': {
        post: {
          summary: 'One chat turn, answered in JSON or streamed as Server-Sent Events',
          requestBody: { required: true, content: json({ $ref: '#/components/schemas/ChatRequest' }) },
          responses: chatAnswer,
        },
      },
      ...tasks,
      '/api/cache/stats': { get: { summary: 'Cluster-wide cache figures', responses: { '200': { description: 'Figures', content: json(output(CacheStatsSchema)) }, '503': errors['503'] } } },
      '/api/cache/invalidate': {
        post: {
          summary: 'Delete cached answers by pattern (`ai_cache:*`) and/or task type',
          parameters: [
            {
              name: 'pattern',
              in: 'query',
              description: '`ai_cache:` then letters, digits, `_ : -` and the wildcards `* ?`; `*` alone is every answer',
              schema: input(CachePatternSchema),
            },
            { name: 'task_type', in: 'query', schema: { type: 'string', enum: [...TASK_TYPES] } },
          ],
          responses: { '200': { description: 'How many were deleted', content: json(output(CacheInvalidateResultSchema)) }, '400': errors['400'], '503': errors['503'] },
        },
      },
      '/api/cache/health': { get: { summary: 'Cache backend health', responses: { '200': { description: 'Health', content: json(output(CacheHealthSchema)) } } } },
      '/api/health': { get: { summary: 'Health with each dependency', responses: { '200': { description: 'healthy or degraded' }, '503': { description: 'unhealthy' } } } },
      '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'alive' } } } },
      '/readyz': { get: { summary: 'Readiness (503 while the bus is down or shutting down)', responses: { '200': { description: 'ready' }, '503': { description: 'not ready' } } } },
      '/api/websocket/stats': { get: { summary: 'WebSocket connections and sessions', responses: { '200': { description: 'Figures' } } } },
      '/api/metrics': { get: { summary: 'Prometheus text format', responses: { '200': { description: 'Metrics', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
      '/metrics': { get: { summary: 'Prometheus text format (the scrape path every service has)', responses: { '200': { description: 'Metrics', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
      '/api/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } } } },
      '/api/asyncapi.json': { get: { summary: 'The WebSocket protocol (/ws/assistant/{session_id}) as AsyncAPI 3.0', responses: { '200': { description: 'AsyncAPI 3.0', content: json({ type: 'object' }) } } } },
      ...jobPathsDoc(),
    },
    components: {
      schemas: {
        ChatRequest: input(ChatRequestSchema),
        ChatResponse: output(ChatResponseSchema),
        Error: output(ErrorBodySchema),
        ...jobSchemasDoc(),
      },
    },
  };
}
