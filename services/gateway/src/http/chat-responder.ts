import type { Request, Response } from 'express';
import { toAppError, type ChatRequest } from '@actionedx/shared';
import { AdmissionRefusal, type Admission, type AdmissionTicket } from '../admission/admission.js';
import { subjectOf } from '../admission/subject.js';
import { principalOf } from '../auth/principal.js';
import type { ChatDispatcher } from '../chat/chat-dispatcher.js';
import { toChatResponse, type DispatchListener } from '../chat/dispatch-types.js';
import type { ResumeDesk } from '../resume/resume-desk.js';
import { sseEventId } from '../resume/sse-resume.js';
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
    /** Streams are retained for `GET /api/assistant/streams/{id}`; without it a cut stream is cancelled at once. */
    private readonly resumes?: ResumeDesk,
  ) {}

  async respond(req: Request, res: Response, request: ChatRequest): Promise<void> {
    const ticket = await admitCall(this.admission, res, request.user_id);
    const ctx = contextOf(res);
    const controller = new AbortController();
    let settled = false;
    const streaming = wantsEventStream(req);
    // The client went away before the answer: stop the worker (no more tokens paid for). A stream may be resumed
    // (Last-Event-ID, on any replica): it runs on for the resume grace first.
    res.once('close', () => {
      if (settled) return;
      if (streaming && this.resumes) this.resumes.detach(ctx.request_id, () => controller.abort());
      else controller.abort();
    });
    // Gone while it was being admitted: the close came before the listener.
    if (res.destroyed) controller.abort();
    if (streaming) return this.stream(res, request, ticket, controller.signal, () => (settled = true));

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
    const id = ctx.request_id;
    const sse = new SseStream(res);
    // Every event's id is `<request_id>:<last chunk seq>`: what a client sends back as Last-Event-ID to resume.
    let lastSeq = -1;
    const start = (): void => {
      sse.open();
      sse.send('start', { request_id: id }, sseEventId(id, lastSeq));
    };
    const listener: DispatchListener = {
      onStart: start,
      onChunk: (delta, seq) => {
        lastSeq = seq;
        sse.send('chunk', { seq, content: delta }, sseEventId(id, seq));
      },
      onReset: () => {
        lastSeq = -1;
        sse.send('reset', { request_id: id }, sseEventId(id, lastSeq));
      },
    };
    this.resumes?.opened(id, request);
    try {
      const outcome = await this.dispatcher.dispatch(request, ctx, { signal, listener });
      settle();
      ticket.charge(outcome);
      const response = toChatResponse(outcome, id);
      this.resumes?.finished(id, request, response);
      if (!sse.isOpen) start();
      sse.send('done', response, sseEventId(id, lastSeq));
      sse.end();
    } catch (err) {
      settle();
      this.resumes?.settled(id);
      if (signal.aborted) return sse.end();
      if (!sse.isOpen) throw err;
      sse.send('error', toAppError(err).toJSON(id), sseEventId(id, lastSeq));
      sse.end();
    }
  }
}
