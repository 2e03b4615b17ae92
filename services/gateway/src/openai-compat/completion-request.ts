import { z } from 'zod';
import { AppError, LIMITS, type ChatRequest, type HistoryTurn, type TaskType } from '@actionedx/shared';
import type { Principal } from '../auth/principal.js';
import { parseChatRequest } from '../chat/request-validation.js';
import { OpenAiRequestError } from './openai-errors.js';

/** The user a request acts for in open mode (AUTH_MODE=open) when it names none in `user`. */
export const OPEN_MODE_USER = 'openai-client';

const TextPartSchema = z.object({ type: z.literal('text'), text: z.string() });

const MessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  // An assistant turn may have no content (it called tools, which this API does not offer).
  content: z.union([z.string(), z.array(TextPartSchema)]).nullish(),
  name: z.string().optional(),
});
type Message = z.infer<typeof MessageSchema>;

/**
 * `POST /v1/chat/completions` as this API reads it. Parameters OpenAI has and the platform does not use
 * (`seed`, `top_p`, `presence_penalty`, `logit_bias`, ...) are accepted and ignored, as other
 * OpenAI-compatible servers do; the ones that would change what the client gets back are refused.
 */
export const ChatCompletionBodySchema = z.looseObject({
  model: z.string().min(1).max(200),
  messages: z.array(z.unknown()).min(1, 'must hold at least one message'),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  n: z.number().int().nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  user: z.string().max(256).nullish(),
  tools: z.array(z.unknown()).nullish(),
  functions: z.array(z.unknown()).nullish(),
  logprobs: z.boolean().nullish(),
  response_format: z.looseObject({ type: z.string() }).nullish(),
});
export type ChatCompletionBody = z.infer<typeof ChatCompletionBodySchema>;

const invalid = (param: string, message: string, code = 'invalid_value'): OpenAiRequestError =>
  new OpenAiRequestError(400, code, message, param);
const unsupported = (param: string, message: string): OpenAiRequestError => invalid(param, message, 'unsupported_parameter');

/** The body, checked: OpenAI's 400 with the offending `param` otherwise. */
export function parseCompletionBody(input: unknown): ChatCompletionBody {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid('(body)', 'The body must be a JSON object.');
  const parsed = ChatCompletionBodySchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const param = issue.path.map(String).join('.') || null;
    throw new OpenAiRequestError(400, 'invalid_value', `${param ?? 'body'}: ${issue.message}`, param);
  }
  const body = parsed.data;
  if (body.n != null && body.n !== 1) throw unsupported('n', 'Only n=1 is supported: one choice per request.');
  if (body.tools?.length || body.functions?.length) throw unsupported('tools', 'Tools and function calling are not supported.');
  if (body.logprobs) throw unsupported('logprobs', 'Log probabilities are not supported.');
  if (body.response_format && body.response_format.type !== 'text') {
    throw unsupported('response_format', "Only response_format {type: 'text'} is supported.");
  }
  return body;
}

function textOf(m: Message): string {
  if (m.content == null) return '';
  if (typeof m.content === 'string') return m.content;
  return m.content.map((p) => p.text).join('');
}

function messageAt(raw: unknown, i: number): Message {
  const parsed = MessageSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const role = (raw as { role?: unknown } | null)?.role;
  if (role === 'tool' || role === 'function') throw unsupported(`messages.${i}.role`, `Messages of role '${role}' are not supported (no tools).`);
  const issue = parsed.error.issues[0]!;
  const param = ['messages', i, ...issue.path].map(String).join('.');
  throw invalid(param, `${param}: ${issue.code === 'invalid_union' ? 'content must be a string or an array of text parts' : issue.message}`);
}

export interface CompletionTarget {
  taskType: TaskType;
  principal: Principal;
  /** False when the client asked to bypass the cache (`x-cache-bypass: 1`, `Cache-Control: no-cache`). */
  useCache: boolean;
}

/**
 * The platform's chat request for an OpenAI chat completion. The last message must be the user's: it is the
 * `message`. Earlier user and assistant messages become the `history` (at most LIMITS.historyMaxTurns).
 * System and developer messages, wherever they are, are joined into `context.system` (part of the prompt
 * after the persona and the task's instructions, and of the cache key). `max_completion_tokens` (or
 * `max_tokens`) and `temperature` go to the model and into the cache key. The authenticated user is the user;
 * in open mode `user` names it (with a key or token, `user` is accepted and not used).
 */
export function toChatRequest(body: ChatCompletionBody, target: CompletionTarget): ChatRequest {
  const messages = body.messages.map(messageAt);
  const last = messages.at(-1)!;
  if (last.role !== 'user') {
    throw invalid(`messages.${messages.length - 1}.role`, 'The last message must be the user\'s: it is the one answered.');
  }
  const system: string[] = [];
  const history: HistoryTurn[] = [];
  for (const m of messages.slice(0, -1)) {
    const text = textOf(m);
    if (m.role === 'system' || m.role === 'developer') system.push(text);
    else history.push({ role: m.role, content: text });
  }
  const { principal } = target;
  // The newer name wins, as with OpenAI; either caps the answer at most at the task type's own cap.
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  const userId = principal.method === 'open' ? (body.user ?? OPEN_MODE_USER) : principal.user_id!;
  try {
    return parseChatRequest({
      user_id: userId,
      message: textOf(last),
      task_type: target.taskType,
      history,
      context: system.length > 0 ? { system: system.join('\n\n') } : {},
      use_cache: target.useCache,
      ...(maxTokens == null ? {} : { max_tokens: Math.min(maxTokens, LIMITS.maxTokens) }),
      ...(body.temperature == null ? {} : { temperature: body.temperature }),
    });
  } catch (err) {
    if (err instanceof AppError && err.details?.field === 'user_id') {
      throw invalid('user', 'user may only hold letters, digits and _ . : @ - (at most 128) in open mode.');
    }
    throw err;
  }
}

/** `x-cache-bypass: 1` (or `true`), or `Cache-Control: no-cache` / `no-store`: answer from the model, not the cache. */
export function bypassesCache(headers: Record<string, string | string[] | undefined>): boolean {
  const bypass = String(headers['x-cache-bypass'] ?? '').trim().toLowerCase();
  if (bypass === '1' || bypass === 'true') return true;
  const cc = String(headers['cache-control'] ?? '').toLowerCase();
  return /(^|,)\s*no-(cache|store)\s*(,|$)/.test(cc);
}
