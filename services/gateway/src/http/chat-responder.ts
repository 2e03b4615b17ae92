import type { Request, Response } from 'express';
import { toAppError, type ChatRequest } from '@actionedx/shared';
import type { ChatDispatcher } from '../chat/chat-dispatcher.js';
import { toChatResponse, type DispatchListener } from '../chat/dispatch-types.js';
import { contextOf } from './request-context.js';
import { SseStream } from './sse-stream.js';

const wantsEventStream = (req: Request): boolean => req.headers.accept?.includes('text/event-stream') === true;

/**
 * Answers one chat request over HTTP: a JSON body, or Server-Sent Events when the client accepts them.
 * Until a worker takes the request, failures are plain JSON errors with their status (e.g. 503 no_workers).
 */
export class ChatResponder {
  constructor(private readonly dispatcher: ChatDispatcher) {}

  async respond(req: Request, res: Response, request: ChatRequest): Promise<void> {
    const ctx = contextOf(res);
    const controller = new AbortController();
    let settled = false;
    // The client went away before the answer: stop the worker (no more tokens paid for).
    res.once('close', () => {
      if (!settled) controller.abort();
    });
    if (wantsEventStream(req)) return this.stream(res, request, controller.signal, () => (settled = true));

    try {
      const outcome = await this.dispatcher.dispatch(request, ctx, { signal: controller.signal });
      settled = true;
      res.json(toChatResponse(outcome, ctx.request_id));
    } catch (err) {
      settled = true;
      if (controller.signal.aborted) return;
      throw err;
    }
  }

  private async stream(res: Response, request: ChatRequest, signal: AbortSignal, settle: () => void): Promise<void> {
    const ctx = contextOf(res);
    const sse = new SseStream(res);
    const start = (): void => {
      sse.open();
      sse.send('start', { request_id: ctx.request_id });
    };
    const listener: DispatchListener = {
      onStart: start,
      onChunk: (delta, seq) => sse.send('chunk', { seq, content: delta }),
      onReset: () => sse.send('reset', { request_id: ctx.request_id }),
    };
    try {
      const outcome = await this.dispatcher.dispatch(request, ctx, { signal, listener });
      settle();
      if (!sse.isOpen) start();
      sse.send('done', toChatResponse(outcome, ctx.request_id));
      sse.end();
    } catch (err) {
      settle();
      if (signal.aborted) return sse.end();
      if (!sse.isOpen) throw err;
      sse.send('error', toAppError(err).toJSON(ctx.request_id));
      sse.end();
    }
  }
}
