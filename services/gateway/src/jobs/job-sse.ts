import type { Request, Response } from 'express';
import { isFinalJobEvent, isTerminalJobState, type JobEvent, type Logger } from '@actionedx/shared';
import { SseStream } from '../http/sse-stream.js';
import type { JobDesk } from './job-desk.js';
import type { JobPushHub } from './job-push-hub.js';

/** The seq a client already has: the `Last-Event-ID` header (a reconnecting EventSource) or `?last_event_id=`. */
function lastEventId(req: Request): number {
  const raw = req.get('last-event-id') ?? (typeof req.query.last_event_id === 'string' ? req.query.last_event_id : undefined);
  const n = Number(raw);
  return raw !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/**
 * A job's events as Server-Sent Events (`id` = seq, event name = type): the kept events after the client's last
 * id first, then live ones, in order and without duplicates; a gap in the live ones (a bus message lost) is filled
 * from the kept copy. Ends after the job's final event.
 */
export async function streamJobEvents(
  req: Request,
  res: Response,
  deps: { desk: JobDesk; hub: JobPushHub; logger: Logger },
  caller: string,
  jobId: string,
): Promise<void> {
  const rec = await deps.desk.get(caller, jobId);
  let sent = lastEventId(req);
  const sse = new SseStream(res);
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    detach();
    sse.end();
  };
  const deliver = (e: JobEvent) => {
    if (finished || e.seq <= sent) return;
    sent = e.seq;
    sse.send(e.type, e, String(e.seq));
    if (isFinalJobEvent(e)) finish();
  };
  // Live events wait in line behind the replay (and behind any gap being filled), so order holds.
  let line: Promise<void> = Promise.resolve();
  const backfill = () => deps.desk.events(jobId, sent).then((events) => events.forEach(deliver));
  const detach = deps.hub.attach(rec.owner, (e) => {
    if (e.job_id !== jobId) return;
    line = line.then(() => (e.seq > sent + 1 ? backfill() : deliver(e))).catch((err: unknown) => {
      deps.logger.warn({ err, job_id: jobId }, 'job event stream: could not fill a gap');
    });
  });
  res.on('close', finish);
  sse.open();
  // Events published before the server had our subscription are in the kept copy: read it only after that point.
  line = line.then(() => deps.hub.flush()).then(backfill);
  await line.catch(() => undefined);
  // Ended before the stream opened, with its final event no longer kept: nothing more will come.
  if (!finished && isTerminalJobState(rec.state)) finish();
}
