import { z } from 'zod';
import { ChatCompletionBodySchema } from './completion-request.js';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const error = (description: string) => ({ description, content: json(ref('OpenAiError')) });

const rateLimitHeaders = {
  'RateLimit-Policy': { description: "draft-ietf-httpapi-ratelimit-headers-10: the caller's quotas", schema: { type: 'string' } },
  RateLimit: { description: 'draft-ietf-httpapi-ratelimit-headers-10: what is left of each, and when it resets', schema: { type: 'string' } },
};
const door = {
  '401': error('No valid token or API key: `code` `invalid_api_key` (the SDKs raise AuthenticationError)'),
  '403': error('Not allowed (`permission_error`)'),
};
const modelId = { name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'e.g. `actionedx/strategy_audit` (the slash may be sent raw or as %2F)' };

/** OpenAI's error body, as every `/v1` route answers errors. */
const OpenAiErrorSchema = z.object({
  error: z.object({
    message: z.string(),
    type: z.string().describe('invalid_request_error, permission_error, requests, tokens, insufficient_quota, server_error'),
    code: z.string().nullable().describe('model_not_found, unsupported_parameter, invalid_value, invalid_api_key, rate_limit_exceeded, unknown_url, or a platform code (no_workers, overloaded, ...)'),
    param: z.string().nullable(),
    request_id: z.string().optional(),
  }),
});

const doc = (schema: z.ZodType, io: 'input' | 'output') => z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' });

/** The schemas of the OpenAI-compatible API. */
export function openAiSchemasDoc(): Record<string, unknown> {
  return { ChatCompletionRequest: doc(ChatCompletionBodySchema, 'input'), OpenAiError: doc(OpenAiErrorSchema, 'output') };
}

/** `/v1/chat/completions`, `/v1/models`, `/v1/models/{id}`. */
export function openAiPathsDoc(): Record<string, unknown> {
  return {
    '/v1/chat/completions': {
      post: {
        summary:
          'OpenAI-compatible chat completion (the official SDKs work unchanged): `model` is `actionedx/<task_type>` or a model the routing allows; the last message is answered, earlier ones are the history, system messages the context. Same pipeline as /api/assistant/chat (cache, single flight, routing, usage)',
        parameters: [
          { name: 'x-cache-bypass', in: 'header', required: false, schema: { type: 'string', enum: ['1', 'true'] }, description: 'Answer from the model, not the cache (as `Cache-Control: no-cache`)' },
        ],
        requestBody: { required: true, content: json(ref('ChatCompletionRequest')) },
        responses: {
          '200': {
            description:
              '`chat.completion`; with `stream: true`, `chat.completion.chunk` events (a cached answer too), a usage chunk with `stream_options.include_usage`, then `[DONE]`. Platform extras under `actionedx`',
            content: { ...json({ type: 'object' }), 'text/event-stream': { schema: { type: 'string' } } },
            headers: {
              ...rateLimitHeaders,
              'x-cache': { description: '`hit`, `miss` or `coalesced` (a stream tells it with its first token: `hit` also for a coalesced answer)', schema: { type: 'string', enum: ['hit', 'miss', 'coalesced'] } },
            },
          },
          '400': error('Invalid request (`invalid_value`, `unsupported_parameter` such as n > 1 or tools, `invalid_json`); `param` names the field'),
          ...door,
          '404': error('Unknown model (`model_not_found`)'),
          '413': error('Body over the size limit'),
          '415': error('Not JSON'),
          '429': error('Over a limit: `rate_limit_exceeded` (type `requests` or `tokens`) or `insufficient_quota` (the day\'s budget); `Retry-After` and the RateLimit fields say when'),
          '503': error('No orchestrator, overloaded, bus down, no model provider (`server_error`, retryable)'),
        },
      },
    },
    '/v1/models': {
      get: {
        summary: 'The models this API takes: the task-type aliases, then every model the routing uses',
        responses: { '200': { description: 'OpenAI list of `model` objects', content: json({ type: 'object' }) }, ...door },
      },
    },
    '/v1/models/{id}': {
      get: {
        summary: 'One model of the list',
        parameters: [modelId],
        responses: { '200': { description: 'The `model` object', content: json({ type: 'object' }) }, ...door, '404': error('Unknown model (`model_not_found`)') },
      },
    },
  };
}
