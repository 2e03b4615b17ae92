import type { Counter } from 'prom-client';
import {
  AppError,
  ERROR_CATALOG,
  Subjects,
  decodeJson,
  encodeJson,
  type Bus,
  type BusSubscription,
  type ChatRequest,
  type ChatResponse,
  type Logger,
  type ResumeFailureCode,
} from '@actionedx/shared';
import { z } from 'zod';
import type { AnswerLog, FrameFeed } from './answer-log.js';
import { AnswerReplay, type ResumeSink } from './answer-replay.js';
import type { ResumeConfig } from './resume-config.js';

/** After the last frame, how long a resume waits for the dispatching gateway's record of the final answer. */
const FINAL_RECORD_WAIT_MS = 3_000;
const FINAL_RECORD_POLL_MS = 100;
/** How often a resume checks that its answer is still alive. */
const WATCH_MS = 250;
/** The log's streams are tried again while NATS or JetStream is not there yet: after 1 s, doubling up to 30 s. */
const START_RETRY_MS = 1_000;
const START_RETRY_MAX_MS = 30_000;

/** A resume took the answer (it runs to its end), or its new client asked to stop it (`cancel`). */
const ClaimSchema = z.object({ request_id: z.string(), cancel: z.boolean().optional() });

/** The `outcome` of `ai_resumes_total`. */
export type ResumeOutcome = 'ok' | 'expired' | 'refused';

export interface ResumeRequest {
  requestId: string;
  /** The last `seq` the client got (-1: none). */
  lastSeq: number;
  /** Who asks: the authenticated user; undefined only in open mode when the client names nobody. */
  userId: string | undefined;
  /** The session of the socket that asks (WebSocket), checked against the answer's. */
  sessionId?: string | undefined;
  /**
   * The socket is a member's of a collaboration session `sessionId` (membership checked at its upgrade): any
   * member may resume that session's own answers, whoever asked.
   */
  sharedSession?: boolean;
  /** Aborted when the client cancels the answer (WebSocket `cancel`): it is stopped where it runs. */
  cancel?: AbortSignal | undefined;
}

export interface ResumeDeskOptions {
  bus: Bus;
  log: AnswerLog;
  gatewayId: string;
  config: ResumeConfig;
  /** Silence after which a worker is presumed lost (3 × heartbeat), plus the queue's redelivery wait. */
  silenceLimitMs: number;
  /** The longest a request may run: a resume follows an answer no longer than this. */
  requestTimeoutMs: number;
  logger: Logger;
  resumes: Counter<'outcome'>;
}

/**
 * Resuming streamed answers, on any replica. The dispatching side tells it when an answer opens and finishes
 * (the owner's record, then the answer itself), and when its client leaves (`detach`: the answer keeps running
 * for RESUME_GRACE_MS, then is cancelled unless a resume on some replica claimed it). The resuming side checks
 * who asks against the record, then replays the log: missed chunks, the rest live, the end; or `resume_failed`.
 */
export class ResumeDesk {
  /** Answers whose client left: the cancel runs when the timer fires; a claimed one has no timer. */
  private readonly detached = new Map<string, { timer: NodeJS.Timeout | undefined; cancel: () => void }>();
  private claims: BusSubscription | undefined;
  private startTimer: NodeJS.Timeout | undefined;
  private stopWatchingBus: (() => void) | undefined;
  private closed = false;
  private readonly resumes: Record<ResumeOutcome, { inc(): void }>;

  constructor(private readonly o: ResumeDeskOptions) {
    this.resumes = { ok: o.resumes.labels('ok'), expired: o.resumes.labels('expired'), refused: o.resumes.labels('refused') };
    // Every outcome is exported from the start (at 0), so a rate over it exists before the first resume.
    for (const outcome of ['ok', 'expired', 'refused'] as const) o.resumes.inc({ outcome }, 0);
  }

  get logKind(): AnswerLog['kind'] {
    return this.o.log.kind;
  }

  /** Listen for claims on this gateway's detached answers; make the log's streams (tried again until they exist). */
  start(): void {
    this.claims = this.o.bus.subscribe(Subjects.resumeClaims(this.o.gatewayId), (msg) => {
      try {
        const claim = decodeJson(ClaimSchema, msg.data);
        this.claim(claim.request_id, claim.cancel === true);
      } catch {
        /* a malformed claim changes nothing */
      }
    });
    let wait = START_RETRY_MS;
    const attempt = (): void => {
      this.startTimer = undefined;
      if (this.closed) return;
      this.o.log.start().then(
        () => this.o.logger.info({ log: this.o.log.kind, window_ms: this.o.config.windowMs }, 'answers are retained for resuming'),
        (err: unknown) => {
          this.o.logger.warn({ err, retry_in_ms: wait }, 'the answer log is not ready: resumes fail until it is');
          this.startTimer = setTimeout(attempt, wait);
          this.startTimer.unref();
          wait = Math.min(wait * 2, START_RETRY_MAX_MS);
        },
      );
    };
    attempt();
    // A NATS server that restarted lost its memory streams: make them again after every reconnection.
    let down = false;
    this.stopWatchingBus = this.o.bus.onStateChange((state) => {
      if (state !== 'connected') {
        down = true;
        return;
      }
      if (!down) return;
      down = false;
      wait = START_RETRY_MS;
      clearTimeout(this.startTimer);
      attempt();
    });
  }

  /** A streamed answer was dispatched: its owner, for the resumes to check. */
  opened(requestId: string, request: ChatRequest): void {
    this.o.log.write({ request_id: requestId, user_id: request.user_id, session_id: request.session_id, gateway_id: this.o.gatewayId });
  }

  /** The answer is complete: kept (RESUME_ANSWER_TTL_MS) for a resume past the window. */
  finished(requestId: string, request: ChatRequest, response: ChatResponse): void {
    this.settled(requestId);
    this.o.log.write({ request_id: requestId, user_id: request.user_id, session_id: request.session_id, gateway_id: this.o.gatewayId, response });
  }

  /** The client of a running answer went away: `cancel` it after the grace, unless a resume claims it first. */
  detach(requestId: string, cancel: () => void): void {
    if (this.o.config.graceMs === 0 || this.closed) return cancel();
    this.settled(requestId);
    const timer = setTimeout(() => {
      this.detached.delete(requestId);
      cancel();
    }, this.o.config.graceMs);
    timer.unref();
    this.detached.set(requestId, { timer, cancel });
  }

  /** The answer ended (or its cancel is no longer wanted). */
  settled(requestId: string): void {
    const d = this.detached.get(requestId);
    if (!d) return;
    clearTimeout(d.timer);
    this.detached.delete(requestId);
  }

  /** Answers whose client left, waiting for a resume. */
  get detachedCount(): number {
    return this.detached.size;
  }

  /**
   * Replay an answer to `sink`: resolves when the client has had all it will get (the end, an error, or
   * `resume_failed`), or at once when `signal` aborts (the resuming client left too).
   */
  async resume(req: ResumeRequest, sink: ResumeSink, signal?: AbortSignal): Promise<ResumeOutcome> {
    const outcome = await this.replay(req, sink, signal).catch((err: unknown) => {
      this.o.logger.warn({ err, request_id: req.requestId }, 'resume failed');
      sink.error(err instanceof AppError ? err : new AppError('internal', undefined, { cause: err }));
      return 'expired' as const;
    });
    this.resumes[outcome].inc();
    this.o.logger.info({ request_id: req.requestId, last_seq: req.lastSeq, outcome }, 'resume');
    return outcome;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.startTimer);
    this.stopWatchingBus?.();
    this.claims?.unsubscribe();
    void this.o.log.close().catch(() => {});
    // Shutting down: the answers whose clients left are cancelled with the others.
    for (const [id, d] of this.detached) {
      clearTimeout(d.timer);
      this.detached.delete(id);
      d.cancel();
    }
  }

  private claim(requestId: string, cancel: boolean): void {
    const d = this.detached.get(requestId);
    if (!d) return;
    clearTimeout(d.timer);
    if (cancel) {
      this.detached.delete(requestId);
      this.o.logger.info({ request_id: requestId }, 'the client that resumed an answer cancelled it');
      return d.cancel();
    }
    d.timer = undefined;
    this.o.logger.info({ request_id: requestId }, 'a resume claimed an answer whose client had left: it runs to its end');
  }

  /**
   * The client of a resumed answer cancelled it (`cancel` on its new socket): the gateway that runs it stops it, as
   * it would for its own client (the workers are told).
   */
  cancelResumed(requestId: string, gatewayId: string): void {
    try {
      this.o.bus.publish(Subjects.resumeClaims(gatewayId), encodeJson({ request_id: requestId, cancel: true }));
    } catch {
      /* the bus is gone: the answer ends at its grace or deadline */
    }
  }

  private async replay(req: ResumeRequest, sink: ResumeSink, signal: AbortSignal | undefined): Promise<ResumeOutcome> {
    const fail = (code: ResumeFailureCode, response?: ChatResponse): ResumeOutcome => {
      sink.failed(code, response);
      return code === 'resume_forbidden' ? 'refused' : 'expired';
    };
    const record = await this.o.log.read(req.requestId);
    if (!record) return fail('resume_unknown');
    const sessionAnswer = req.sharedSession === true && req.sessionId !== undefined && record.session_id === req.sessionId;
    const ownerOk = req.userId === undefined || record.user_id === req.userId || sessionAnswer;
    const sessionOk = req.sessionId === undefined || record.session_id === undefined || record.session_id === req.sessionId;
    if (!ownerOk || !sessionOk) return fail('resume_forbidden');
    const subject = Subjects.chatRetained(record.gateway_id, req.requestId);
    // A finished answer whose frames aged out: its final answer. One still running is followed even when nothing
    // is retained yet (its worker publishes the retained copy every 20 ms; the silence watch ends a dead one).
    if (record.response && !(await this.o.log.hasFrames(subject))) return fail('resume_expired', record.response);
    // The dispatching gateway keeps the answer running (no cancel after its grace): it has a reader again.
    if (!record.response) {
      try {
        this.o.bus.publish(Subjects.resumeClaims(record.gateway_id), encodeJson({ request_id: req.requestId }));
      } catch {
        /* the bus is gone: the replay below fails on its own */
      }
    }
    if (signal?.aborted) return 'ok';
    return this.follow(req, subject, record.gateway_id, sink, signal);
  }

  private follow(
    req: ResumeRequest,
    subject: string,
    gatewayId: string,
    sink: ResumeSink,
    signal: AbortSignal | undefined,
  ): Promise<ResumeOutcome> {
    return new Promise<ResumeOutcome>((resolve, reject) => {
      let done = false;
      let feed: FrameFeed | undefined;
      let lastFrameAt = Date.now();
      const deadline = Date.now() + this.o.requestTimeoutMs;
      const replay = new AnswerReplay(req.requestId, req.lastSeq, sink);
      const finish = (outcome: ResumeOutcome | Promise<ResumeOutcome>): void => {
        if (done) return;
        done = true;
        clearInterval(watch);
        signal?.removeEventListener('abort', onAbort);
        req.cancel?.removeEventListener('abort', onCancel);
        feed?.stop();
        resolve(outcome);
      };
      const onAbort = (): void => finish('ok');
      const onCancel = (): void => {
        this.cancelResumed(req.requestId, gatewayId);
        sink.error(new AppError('cancelled', 'The answer was cancelled.'));
        finish('ok');
      };
      const watch = setInterval(() => {
        const now = Date.now();
        if (now >= deadline) {
          sink.error(new AppError('deadline_exceeded'));
          finish('ok');
        } else if (!replay.queued && now - lastFrameAt >= this.o.silenceLimitMs) {
          sink.error(new AppError('worker_lost', 'The answer stopped: its worker and its gateway are gone.'));
          finish('ok');
        }
      }, WATCH_MS);
      watch.unref();
      signal?.addEventListener('abort', onAbort, { once: true });
      req.cancel?.addEventListener('abort', onCancel, { once: true });
      const onData = (data: Uint8Array): void => {
        if (done) return;
        lastFrameAt = Date.now();
        const step = replay.feed(data);
        if (step === 'ended') finish('ok');
        else if (step === 'need_final') finish(this.finalAnswer(req.requestId).then((r) => (r ? (sink.end(r), 'ok') : failExpired(undefined))));
        else if (step === 'expired') finish(this.finalAnswer(req.requestId).then((r) => failExpired(r)));
      };
      const failExpired = (response: ChatResponse | undefined): ResumeOutcome => {
        sink.failed('resume_expired', response);
        return 'expired';
      };
      this.o.log.follow(subject, onData, (err) => {
        if (done) return;
        sink.error(new AppError('bus_unavailable', undefined, { cause: err }));
        finish('ok');
      }).then(
        (f) => {
          if (done) f.stop();
          else feed = f;
        },
        (err: unknown) => {
          if (done) return;
          done = true;
          clearInterval(watch);
          signal?.removeEventListener('abort', onAbort);
          req.cancel?.removeEventListener('abort', onCancel);
          reject(err instanceof AppError ? err : new AppError('bus_unavailable', undefined, { cause: err }));
        },
      );
    });
  }

  /** The final answer as the dispatching gateway recorded it, waited for a moment (it is written at the end). */
  private async finalAnswer(requestId: string): Promise<ChatResponse | undefined> {
    const until = Date.now() + FINAL_RECORD_WAIT_MS;
    for (;;) {
      const record = await this.o.log.read(requestId).catch(() => undefined);
      if (record?.response) return record.response;
      if (Date.now() >= until) return undefined;
      await new Promise((r) => setTimeout(r, FINAL_RECORD_POLL_MS));
    }
  }
}

/** The `message` of a `resume_failed` with this code. */
export const resumeFailureMessage = (code: ResumeFailureCode): string => ERROR_CATALOG[code].message;
