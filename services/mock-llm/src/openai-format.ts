/** The objects of the Chat Completions API, shaped as the `openai` SDK expects them. */
import { randomBytes } from 'node:crypto';
import type { ZodError } from 'zod';

export type FinishReason = 'stop' | 'length';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export const usageOf = (promptTokens: number, completionTokens: number): Usage => ({
  prompt_tokens: promptTokens,
  completion_tokens: completionTokens,
  total_tokens: promptTokens + completionTokens,
});

const SYSTEM_FINGERPRINT = 'fp_mock_llm';

/** Ids and timestamps shared by every object of one completion. */
export interface CompletionIdentity {
  id: string;
  created: number;
  model: string;
}

export const newIdentity = (model: string): CompletionIdentity => ({
  id: `chatcmpl-${randomBytes(12).toString('hex')}`,
  created: Math.floor(Date.now() / 1000),
  model,
});

export function completion(who: CompletionIdentity, content: string, finishReason: FinishReason, usage: Usage) {
  return {
    ...who,
    object: 'chat.completion',
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: [
      { index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: finishReason },
    ],
    usage,
  };
}

interface Delta {
  role?: 'assistant';
  content?: string;
}

/** One streamed chunk; `usage: null` appears on every chunk when the client asked for usage, as upstream does. */
export function chunk(who: CompletionIdentity, delta: Delta, finishReason: FinishReason | null, withUsage: boolean) {
  return {
    ...who,
    object: 'chat.completion.chunk',
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(withUsage ? { usage: null } : {}),
  };
}

/** The last chunk of a stream with `include_usage`: no choices, only the usage. */
export const usageChunk = (who: CompletionIdentity, usage: Usage) => ({
  ...who,
  object: 'chat.completion.chunk',
  system_fingerprint: SYSTEM_FINGERPRINT,
  choices: [],
  usage,
});

export type ErrorType = 'invalid_request_error' | 'requests' | 'server_error';

export const errorBody = (message: string, type: ErrorType, code: string | null) => ({
  error: { message, type, param: null, code },
});

/** A 400 body naming the first problem of a failed parse, as the real API names the offending parameter. */
export function invalidRequestBody(error: ZodError) {
  const issue = error.issues[0];
  const message = `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`;
  return errorBody(message, 'invalid_request_error', 'invalid_request');
}
