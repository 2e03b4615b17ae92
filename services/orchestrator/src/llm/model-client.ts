import OpenAI from 'openai';
import { AppError, type Usage } from '@actionedx/shared';
import type { PromptMessage } from '../tasks/index.js';

export interface ModelClientOptions {
  baseURL?: string | undefined;
  apiKey: string;
  /** Per attempt. Default 60 s. */
  timeoutMs?: number;
  /** The SDK retries 408/409/429/5xx and connection errors with backoff, honouring retry-after. Default 2. */
  maxRetries?: number;
}

export interface CompletionRequest {
  model: string;
  messages: PromptMessage[];
  maxTokens: number;
  signal: AbortSignal;
  /** Called for each piece of text as it arrives. */
  onDelta: (delta: string) => void;
  /** Sent with the HTTP call (request id, trace context), so the provider's logs can be matched. */
  headers?: Record<string, string>;
}

export interface Completion {
  text: string;
  usage: Usage;
  /** `stop` when the model finished; anything else means the answer was cut short. */
  finishReason: string;
  /** The model that answered, as the provider names it. */
  model: string;
}

/** Kinds of upstream failure, a label of `ai_upstream_errors_total`. */
export type UpstreamErrorKind = 'rate_limited' | 'timeout' | 'server_error' | 'connection' | 'bad_response' | 'client_error';

export class UpstreamError extends AppError {
  constructor(
    readonly kind: UpstreamErrorKind,
    code: 'upstream_rate_limited' | 'upstream_timeout' | 'upstream_error' | 'upstream_bad_response',
    message: string,
    cause?: unknown,
  ) {
    super(code, message, { cause });
  }
}

const estimateTokens = (text: string): number => Math.ceil(text.length / 4);

/** Streams completions through the official `openai` SDK from any OpenAI-compatible server. */
export class ModelClient {
  private readonly client: OpenAI;

  constructor(opts: ModelClientOptions) {
    this.client = new OpenAI({
      apiKey: opts.apiKey,
      ...(opts.baseURL ? { baseURL: opts.baseURL } : {}),
      timeout: opts.timeoutMs ?? 60_000,
      maxRetries: opts.maxRetries ?? 2,
    });
  }

  async complete(req: CompletionRequest): Promise<Completion> {
    let text = '';
    let usage: Usage | undefined;
    let finishReason = '';
    let model = req.model;
    try {
      const stream = await this.client.chat.completions.create(
        {
          model: req.model,
          messages: req.messages,
          max_tokens: req.maxTokens,
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: req.signal, ...(req.headers ? { headers: req.headers } : {}) },
      );
      for await (const chunk of stream) {
        if (chunk.model) model = chunk.model;
        const choice = chunk.choices[0];
        const delta = choice?.delta?.content;
        if (delta) {
          text += delta;
          req.onDelta(delta);
        }
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        if (chunk.usage) {
          usage = {
            prompt_tokens: chunk.usage.prompt_tokens,
            completion_tokens: chunk.usage.completion_tokens,
            total_tokens: chunk.usage.total_tokens,
          };
        }
      }
    } catch (err) {
      throw toUpstreamError(err, req.signal);
    }
    if (!finishReason) {
      throw new UpstreamError('bad_response', 'upstream_bad_response', 'the model stream ended without finishing');
    }
    // Providers that ignore include_usage still get billed: estimate rather than report nothing.
    usage ??= {
      prompt_tokens: estimateTokens(req.messages.map((m) => m.content).join(' ')),
      completion_tokens: estimateTokens(text),
      total_tokens: 0,
    };
    if (usage.total_tokens === 0) usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    return { text, usage, finishReason, model };
  }
}

/** The SDK's errors as the platform's; an abort is re-thrown as the reason the signal carries. */
function toUpstreamError(err: unknown, signal: AbortSignal): Error {
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason : new AppError('cancelled');
  if (err instanceof OpenAI.RateLimitError) return new UpstreamError('rate_limited', 'upstream_rate_limited', 'the model provider is rate limiting', err);
  if (err instanceof OpenAI.APIConnectionTimeoutError) return new UpstreamError('timeout', 'upstream_timeout', 'the model provider timed out', err);
  if (err instanceof OpenAI.APIConnectionError) return new UpstreamError('connection', 'upstream_error', 'the connection to the model provider failed', err);
  if (err instanceof OpenAI.InternalServerError) return new UpstreamError('server_error', 'upstream_error', `the model provider failed (${err.status})`, err);
  if (err instanceof OpenAI.APIError) return new UpstreamError('client_error', 'upstream_error', `the model provider refused the request (${err.status ?? 'no status'})`, err);
  // A stream cut mid-answer surfaces as a plain error from the body reader.
  return new UpstreamError('connection', 'upstream_error', 'the model stream broke off', err);
}
