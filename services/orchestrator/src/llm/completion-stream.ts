import type OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { Usage } from '@actionedx/shared';
import type { PromptMessage } from '../tasks/index.js';
import { readSseData } from './sse-events.js';
import { StreamWatchdog } from './stream-watchdog.js';
import { toUpstreamError, UpstreamError } from './upstream-error.js';

export interface StreamRequest {
  model: string;
  messages: PromptMessage[];
  maxTokens: number;
  /** Sampling temperature; the provider's default when absent. */
  temperature?: number;
  /** The caller's end: client gone, deadline, a lost hedge. Closes the upstream connection. */
  signal: AbortSignal;
  /** Called for each piece of text as it arrives. */
  onDelta: (delta: string) => void;
  /** Sent with the HTTP call (request id, trace context), so the provider's logs can be matched. */
  headers?: Record<string, string>;
  /** No text this long after the call started: `first_token_timeout`. */
  firstTokenTimeoutMs: number;
  /** No event this long once text flows: `stall`. */
  stallTimeoutMs: number;
  /** The first piece of text arrived. */
  onFirstToken?: () => void;
  /** The first event carried no `usage` field: this provider will likely send no usage at the end. */
  onNoUsageExpected?: () => void;
}

export interface StreamedCompletion {
  text: string;
  /** From the provider's final chunk; undefined when it sent none. */
  usage: Usage | undefined;
  /** `stop` when the model finished; anything else means the answer was cut short. */
  finishReason: string;
  /** The model that answered, as the provider names it. */
  model: string;
}

/**
 * One streamed completion over HTTP: the `openai` SDK makes the request (and turns HTTP errors into its error
 * classes), the body is read here with a linear SSE parser. Ends with the whole answer, or rejects with an
 * `UpstreamError` (or the caller's abort reason); the upstream connection is closed on every failure.
 */
export async function streamCompletion(client: OpenAI, req: StreamRequest): Promise<StreamedCompletion> {
  if (req.signal.aborted) throw req.signal.reason;
  const controller = new AbortController();
  const fromCaller = (): void => controller.abort(req.signal.reason);
  req.signal.addEventListener('abort', fromCaller, { once: true });
  const watchdog = new StreamWatchdog(req.firstTokenTimeoutMs, req.stallTimeoutMs, (err) => controller.abort(err));
  const acc = { text: '', usage: undefined as Usage | undefined, finishReason: '', model: req.model, events: 0 };
  try {
    const response = await client.chat.completions
      .create(
        {
          model: req.model,
          messages: req.messages,
          max_tokens: req.maxTokens,
          ...(req.temperature === undefined ? {} : { temperature: req.temperature }),
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: controller.signal, ...(req.headers ? { headers: req.headers } : {}) },
      )
      .asResponse();
    if (!response.body) throw new UpstreamError('bad_response', 'the model answered without a body');
    await readSseData(response.body, (data) => {
      watchdog.progress();
      if (data === '[DONE]') return true;
      // The first token goes on to the client before the rest of its network chunk is parsed.
      return onChunk(parseChunk(data), acc, req, watchdog) ? 'yield' : false;
    });
  } catch (err) {
    // Whatever went wrong, the connection goes: a half-read stream keeps a socket and the provider's meter busy.
    const error = toUpstreamError(err, controller.signal);
    controller.abort(error);
    throw error;
  } finally {
    watchdog.stop();
    req.signal.removeEventListener('abort', fromCaller);
  }
  if (!acc.finishReason) throw new UpstreamError('bad_response', 'the model stream ended without finishing');
  return { text: acc.text, usage: acc.usage, finishReason: acc.finishReason, model: acc.model };
}

function parseChunk(data: string): ChatCompletionChunk & { error?: { message?: string } } {
  try {
    return JSON.parse(data) as ChatCompletionChunk;
  } catch (err) {
    throw new UpstreamError('bad_response', 'the model stream carried an event that is not JSON', { cause: err });
  }
}

interface Accumulated {
  text: string;
  usage: Usage | undefined;
  finishReason: string;
  model: string;
  events: number;
}

/** Takes one event into `acc`; true when it carried the answer's first token. */
function onChunk(chunk: ChatCompletionChunk & { error?: { message?: string } }, acc: Accumulated, req: StreamRequest, watchdog: StreamWatchdog): boolean {
  // Some providers report a failure inside a 200 stream.
  if (chunk.error) throw new UpstreamError('server_error', `the model stream reported an error: ${String(chunk.error.message ?? 'unknown')}`);
  if (acc.events++ === 0 && !('usage' in chunk)) req.onNoUsageExpected?.();
  if (chunk.model) acc.model = chunk.model;
  const choice = chunk.choices?.[0];
  const delta = choice?.delta?.content;
  const first = Boolean(delta) && acc.text === '';
  if (delta) {
    if (first) {
      watchdog.firstToken();
      req.onFirstToken?.();
    }
    acc.text += delta;
    req.onDelta(delta);
  }
  if (choice?.finish_reason) acc.finishReason = choice.finish_reason;
  if (chunk.usage) {
    acc.usage = {
      prompt_tokens: chunk.usage.prompt_tokens,
      completion_tokens: chunk.usage.completion_tokens,
      total_tokens: chunk.usage.total_tokens,
    };
  }
  return first;
}
