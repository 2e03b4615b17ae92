import { z } from 'zod';

/** Content as the API accepts it: a string, or parts of which only the text ones matter here. */
const ContentSchema = z.union([
  z.string(),
  z.array(z.looseObject({ type: z.string(), text: z.string().optional() })),
  z.null(),
]);

const MessageSchema = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: ContentSchema.optional(),
});
export type ChatMessage = z.infer<typeof MessageSchema>;

/** The fields of a Chat Completions request the mock acts on; the rest is accepted and ignored. */
export const ChatCompletionRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(MessageSchema).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;

export function messageText(message: ChatMessage): string {
  const { content } = message;
  if (typeof content === 'string') return content;
  return (content ?? []).map((part) => part.text ?? '').join('\n');
}

/** Rough prompt size: words across all messages, which is close enough for usage accounting. */
export const countPromptTokens = (messages: ChatMessage[]): number =>
  messages.reduce((sum, m) => sum + (messageText(m).match(/\S+/g)?.length ?? 0), 0);

/** The orchestrator asks for suggestions by naming the `Suggestions:` heading in its system prompt. */
export const wantsSuggestions = (messages: ChatMessage[]): boolean =>
  messages.some((m) => (m.role === 'system' || m.role === 'developer') && messageText(m).includes('Suggestions:'));

/** The cap the client set, if any; the newer field wins as in the real API. */
export const maxTokensOf = (body: ChatCompletionRequest): number | undefined =>
  body.max_completion_tokens ?? body.max_tokens ?? undefined;
