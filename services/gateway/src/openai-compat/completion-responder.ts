import type { Response } from 'express';
import { AppError, type ChatRequest } from '@actionedx/shared';
import type { Admission } from '../admission/admission.js';
import type { ChatDispatcher } from '../chat/chat-dispatcher.js';
import type { AnswerLane, AnswerSource, ChatOutcome, DispatchListener } from '../chat/dispatch-types.js';
import { admitCall } from '../http/chat-responder.js';
import { contextOf } from '../http/request-context.js';
import { SseStream } from '../http/sse-stream.js';
import { toOpenAiError } from './openai-errors.js';

/** `x-cache` of an answer: from the cache, from an identical request's model call (single flight), or a model call. */
export type CacheHeader = 'hit' | 'coalesced' | 'miss';

const CACHE_HEADER: Record<AnswerSource, CacheHeader> = { cache: 'hit', peer: 'coalesced', model: 'miss' };

export interface CompletionOptions {
  stream: boolean;
  /** `stream_options.include_usage`: a last chunk with the usage and no choices. */
  includeUsage: boolean;
  /** The `model` the client asked for (the streamed chunks carry it until the answer names its model). */
  model: string;
}

/** What the platform adds to OpenAI's answer, under `actionedx` (SDKs keep unknown fields). */
const extensionOf = (o: ChatOutcome, requestId: string) => ({
  request_id: requestId,
  cached: o.cached,
  cache: CACHE_HEADER[o.source],
  task_type: o.task_type,
  mode: o.mode,
  cost_usd: o.cost_usd,
  latency_ms: o.latency_ms,
  suggestions: o.suggestions,
});

/**
 * `length` when the answer used every token the client allowed (`max_tokens`): the model was cut off. The
 * platform never stores a cut answer, so a cached one always ended by itself.
 */
const finishOf = (o: ChatOutcome, request: ChatRequest): 'stop' | 'length' =>
  !o.cached && request.max_tokens !== undefined && o.usage.completion_tokens >= request.max_tokens ? 'length' : 'stop';

const usageOf = (o: ChatOutcome) => ({
  prompt_tokens: o.usage.prompt_tokens,
  completion_tokens: o.usage.completion_tokens,
  total_tokens: o.usage.total_tokens,
});

/**
 * Answers `POST /v1/chat/completions` through the same door and pipeline as `/api/assistant/chat`: admission
 * (RateLimit headers; 429 refusals), the chat dispatcher (bus, cache, single flight, routing, fallbacks),
 * the answer's cost charged to its caller. Non-streamed: one `chat.completion`. Streamed: `chat.completion.chunk`
 * events (a cached answer too), the usage chunk when asked, `[DONE]`. The stream's headers leave with the first
 * piece of the answer, so an error before it is a plain HTTP error with its status (what SDKs retry on).
 */
export class CompletionResponder {
  constructor(
    private readonly dispatcher: ChatDispatcher,
    private readonly admission: Admission,
  ) {}

  async respond(res: Response, request: ChatRequest, opts: CompletionOptions): Promise<void> {
    const ticket = await admitCall(this.admission, res, request.user_id);
    const ctx = contextOf(res);
    const controller = new AbortController();
    let settled = false;
    // The client went away (closed the stream, aborted the call): stop the worker, as the SSE route does.
    res.once('close', () => {
      if (!settled) controller.abort();
    });
    if (res.destroyed) controller.abort();
    const id = `chatcmpl-${ctx.request_id}`;
    const created = Math.floor(Date.now() / 1000);
    if (opts.stream) {
      const outcome = await this.stream(res, request, opts, { id, created, signal: controller.signal, abort: () => controller.abort() }).finally(
        () => (settled = true),
      );
      if (outcome) ticket.charge(outcome);
      return;
    }
    let outcome: ChatOutcome;
    try {
      outcome = await this.dispatcher.dispatch(request, ctx, { signal: controller.signal });
    } catch (err) {
      if (controller.signal.aborted) return;
      throw err;
    } finally {
      settled = true;
    }
    ticket.charge(outcome);
    res.setHeader('x-cache', CACHE_HEADER[outcome.source]);
    res.json({
      id,
      object: 'chat.completion',
      created,
      model: outcome.model,
      choices: [{ index: 0, message: { role: 'assistant', content: outcome.response, refusal: null }, logprobs: null, finish_reason: finishOf(outcome, request) }],
      usage: usageOf(outcome),
      system_fingerprint: null,
      actionedx: extensionOf(outcome, ctx.request_id),
    });
  }

  /** Resolves with the outcome when the answer was delivered, undefined when the stream ended otherwise. */
  private async stream(
    res: Response,
    request: ChatRequest,
    opts: CompletionOptions,
    s: { id: string; created: number; signal: AbortSignal; abort: () => void },
  ): Promise<ChatOutcome | undefined> {
    const ctx = contextOf(res);
    const sse = new SseStream(res);
    let model = opts.model;
    let roleSent = false;
    let restarted = false;
    const usageField = opts.includeUsage ? { usage: null } : {};
    const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}): void =>
      sse.data({
        id: s.id,
        object: 'chat.completion.chunk',
        created: s.created,
        model,
        system_fingerprint: null,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        ...usageField,
        ...extra,
      });
    const open = (cache: CacheHeader): void => {
      if (sse.isOpen) return;
      res.setHeader('x-cache', cache);
      sse.open();
    };
    const content = (text: string): void => {
      chunk(roleSent ? { content: text } : { role: 'assistant', content: text }, null);
      roleSent = true;
    };
    const listener: DispatchListener = {
      // Only the lookup lane answers from the cache; until `done` tells a stored answer from a coalesced one, a
      // stream's header says `hit` for both (the last chunk's `actionedx.cache` is exact).
      onChunk: (delta: string, _seq: number, lane: AnswerLane) => {
        if (restarted) return;
        open(lane === 'model' ? 'miss' : 'hit');
        content(delta);
      },
      onReset: () => {
        if (!sse.isOpen) return;
        // OpenAI's streams cannot take back text: the answer is ended with a retryable error instead.
        restarted = true;
        s.abort();
      },
    };
    try {
      const outcome = await this.dispatcher.dispatch(request, ctx, { signal: s.signal, listener });
      open(CACHE_HEADER[outcome.source]);
      model = outcome.model;
      if (!roleSent) content('');
      chunk({}, finishOf(outcome, request), { actionedx: extensionOf(outcome, ctx.request_id) });
      if (opts.includeUsage) sse.data({ id: s.id, object: 'chat.completion.chunk', created: s.created, model, system_fingerprint: null, choices: [], usage: usageOf(outcome) });
      sse.data('[DONE]');
      sse.end();
      return outcome;
    } catch (err) {
      if (restarted) {
        const lost = new AppError('worker_lost', 'The answer failed mid-stream and had to start again; send the request again.');
        sse.data(toOpenAiError(lost, ctx.request_id).body);
        sse.end();
        return undefined;
      }
      if (s.signal.aborted) {
        sse.end();
        return undefined;
      }
      if (!sse.isOpen) throw err;
      sse.data(toOpenAiError(err, ctx.request_id).body);
      sse.end();
      return undefined;
    }
  }
}
