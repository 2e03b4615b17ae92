import type { Request, Response } from 'express';
import { toAppError, type ChatRequest } from '@actionedx/shared';
import { AdmissionRefusal, type Admission, type AdmissionTicket } from '../admission/admission.js';
import { subjectOf } from '../admission/subject.js';
import { principalOf } from '../auth/principal.js';
import type { ChatDispatcher } from '../chat/chat-dispatcher.js';
import { toChatResponse, type DispatchListener } from '../chat/dispatch-types.js';
import { contextOf } from './request-context.js';
import { SseStream } from './sse-stream.js';

/**
 * Admit one HTTP call of `userId` (rate limits, tokens, budget); its RateLimit headers (and on refusal
 * Retry-After) go on the response either way. Refusals throw (429, or 503 when the limiter is down).
 */
export async function admitCall(admission: Admission, res: Response, userId: string): Promise<AdmissionTicket> {
  try {
    const ticket = await admission.admit(subjectOf(principalOf(res), userId));
    res.set(ticket.headers);
    return ticket;
  } catch (err) {
    if (err instanceof AdmissionRefusal) res.set(err.headers);
    throw err;
  }
}

const wantsEventStream = (req: Request): boolean => req.headers.accept?.includes('text/event-stream') === true;

/**
 * Answers one chat request over HTTP: a JSON body, or Server-Sent Events when the client accepts them.
 * Admission first (rate limits, tokens, budget: RateLimit headers on every answer, 429 or 503 when
 * refused), then dispatch; the answer's real cost is charged to its caller when it is done. Until a worker
 * takes the request, failures are plain JSON errors with their status (e.g. 503 no_workers).
 */
export class ChatResponder {
  constructor(
    private readonly dispatcher: ChatDispatcher,
    private readonly admission: Admission,
  ) {}

  async respond(req: Request, res: Response, request: ChatRequest): Promise<void> {
    const ticket = await admitCall(this.admission, res, request.user_id);
    const ctx = contextOf(res);
    const controller = new AbortController();
    let settled = false;
    // The client went away before the answer: stop the worker (no more tokens paid for).
    res.once('close', () => {
      if (!settled) controller.abort();
    });
    // Gone while it was being admitted: the close came before the listener.
    if (res.destroyed) controller.abort();
    if (wantsEventStream(req)) return this.stream(res, request, ticket, controller.signal, () => (settled = true));

    try {
      const outcome = await this.dispatcher.dispatch(request, ctx, { signal: controller.signal });
      settled = true;
      ticket.charge(outcome);
      res.json(toChatResponse(outcome, ctx.request_id));
    } catch (err) {
      settled = true;
      if (controller.signal.aborted) return;
      throw err;
    }
  }

  private async stream(
    res: Response,
    request: ChatRequest,
    ticket: AdmissionTicket,
    signal: AbortSignal,
    settle: () => void,
  ): Promise<void> {
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
      ticket.charge(outcome);
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
