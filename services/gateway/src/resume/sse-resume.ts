import { Router, type Request, type Response } from 'express';
import { AppError, SUBJECT_TOKEN, UserIdSchema, toAppError, type ChatResponse, type ResumeFailureCode } from '@actionedx/shared';
import { principalOf } from '../auth/principal.js';
import { methodNotAllowed } from '../http/error-mapper.js';
import { SseStream } from '../http/sse-stream.js';
import type { ResumeDesk } from './resume-desk.js';
import { resumeFailureMessage } from './resume-desk.js';

/** The SSE event id of a chat stream: `<request_id>:<seq of the last chunk sent>` (-1 before the first). */
export const sseEventId = (requestId: string, seq: number): string => `${requestId}:${seq}`;

const LAST_SEQ = /^-1$|^(0|[1-9][0-9]{0,8})$/;

/** The chunk a client has up to: `Last-Event-ID: <request_id>:<seq>`, else `?last_seq=`, else none (-1). */
export function lastSeqOf(req: Request, requestId: string): number {
  const header = req.headers['last-event-id'];
  if (typeof header === 'string' && header.length > 0) {
    const at = header.lastIndexOf(':');
    const seq = header.slice(at + 1);
    if (at < 0 || header.slice(0, at) !== requestId || !LAST_SEQ.test(seq)) {
      throw new AppError('validation_failed', 'Last-Event-ID: an event id of this stream, <request_id>:<seq>.', { details: { field: 'Last-Event-ID' } });
    }
    return Number(seq);
  }
  const query = (req.query as Record<string, unknown>).last_seq;
  if (query === undefined) return -1;
  if (typeof query !== 'string' || !LAST_SEQ.test(query)) {
    throw new AppError('validation_failed', 'last_seq: an integer from -1 (none).', { details: { field: 'last_seq' } });
  }
  return Number(query);
}

/** A refused resume before the stream opened: the status of its code, the final answer beside the error when known. */
function refuse(res: Response, requestId: string, code: ResumeFailureCode, response?: ChatResponse): void {
  const err = new AppError(code);
  res.status(err.status).json({ ...err.toJSON(requestId), ...(response ? { response } : {}) });
}

/**
 * `GET /api/assistant/streams/{request_id}`: an SSE chat stream resumed (on any replica) after the chunk that
 * `Last-Event-ID` (or `?last_seq=`) names: the missed `chunk` events, the rest live, `done`. Refused before it
 * opens with 404 `resume_unknown`, 403 `resume_forbidden` (not the owner) or 410 `resume_expired` (with the final
 * answer as `response` when known); when the chunks run out once open, a `resume_failed` event.
 */
export function streamResumeRoutes(resumes: ResumeDesk | undefined): Router {
  const router = Router();
  router
    .route('/api/assistant/streams/:request_id')
    .get(async (req, res) => {
      const requestId = req.params.request_id;
      if (!SUBJECT_TOKEN.test(requestId)) {
        throw new AppError('validation_failed', 'request_id: 1-64 letters, digits, _ or -.', { details: { field: 'request_id' } });
      }
      const lastSeq = lastSeqOf(req, requestId);
      const principal = principalOf(res);
      let userId = principal.user_id;
      if (principal.method === 'open') {
        const named = (req.query as Record<string, unknown>).user_id;
        userId = named === undefined ? undefined : UserIdSchema.parse(named);
      }
      if (!resumes) return refuse(res, requestId, 'resume_unknown');
      const sse = new SseStream(res);
      let seq = lastSeq;
      let failure: AppError | undefined;
      const open = (): void => {
        if (sse.isOpen) return;
        sse.open();
        sse.send('start', { request_id: requestId, resumed_after: lastSeq }, sseEventId(requestId, seq));
      };
      const controller = new AbortController();
      res.once('close', () => controller.abort());
      await resumes.resume(
        { requestId, lastSeq, userId },
        {
          chunk: (content, s) => {
            open();
            seq = s;
            sse.send('chunk', { seq: s, content }, sseEventId(requestId, s));
          },
          reset: () => {
            open();
            seq = -1;
            sse.send('reset', { request_id: requestId }, sseEventId(requestId, seq));
          },
          end: (response) => {
            open();
            sse.send('done', response, sseEventId(requestId, seq));
          },
          failed: (code, response) => {
            if (!sse.isOpen) return refuse(res, requestId, code, response);
            sse.send('resume_failed', { request_id: requestId, code, message: resumeFailureMessage(code), ...(response ? { response } : {}) }, sseEventId(requestId, seq));
          },
          error: (err) => {
            if (!sse.isOpen) failure = err;
            else sse.send('error', toAppError(err).toJSON(requestId), sseEventId(requestId, seq));
          },
        },
        controller.signal,
      );
      if (failure) throw failure;
      sse.end();
    })
    .all(methodNotAllowed('GET'));
  return router;
}
