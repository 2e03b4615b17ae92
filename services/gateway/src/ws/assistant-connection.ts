import type { Duplex } from 'node:stream';
import type { Counter } from 'prom-client';
import { WebSocket, type RawData } from 'ws';
import {
  AppError,
  childTraceparent,
  newRequestId,
  runWithContext,
  type ChatRequest,
  type JobEvent,
  type Logger,
  type RequestContext,
  type WebSocketMetrics,
  type WsChatTurn,
  type WsClientMessage,
  type WsResume,
  type WsServerMessage,
} from '@actionedx/shared';
import type { Admission, AdmissionTicket } from '../admission/admission.js';
import type { EdgeLimits } from '../admission/limits.js';
import { subjectOf } from '../admission/subject.js';
import { TokenBucket } from '../admission/token-bucket.js';
import type { Principal } from '../auth/principal.js';
import type { ChatDispatcher } from '../chat/chat-dispatcher.js';
import type { CollabLink, SessionHub } from '../sessions/session-hub.js';
import { toChatResponse, type DispatchListener } from '../chat/dispatch-types.js';
import { resumeFailureMessage, type ResumeDesk } from '../resume/resume-desk.js';
import { parseClientMessage } from './client-messages.js';
import { toErrorFrame } from './error-frame.js';
import type { SessionMetadata, SessionStore } from './session-store.js';
import type { SocketTarget } from './socket-target.js';
import type { SocketCounters } from './websocket-stats.js';

/** Turns save the session at most this often. */
const TURN_SAVE_INTERVAL_MS = 5_000;
/** After a close frame to a client that does not read, how long until the connection is cut (its memory freed). */
const CLOSE_GRACE_MS = 1_000;
/** Timers longer than this overflow; an expiry further away is checked again later. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Why the gateway ended a socket: the `reason` label of `websocket_closes_total`. */
export type CloseReason = 'client' | 'send_buffer_full' | 'token_expired' | 'shutdown' | 'heartbeat' | 'removed';

/** WebSocket close codes (RFC 6455 7.4.1). */
const CLOSE_POLICY = 1008;
const CLOSE_TRY_LATER = 1013;
/** Application close code (4000-4999): the user is no longer a member of the collaboration session. */
const CLOSE_NOT_A_MEMBER = 4403;

export interface AssistantConnectionDeps {
  dispatcher: ChatDispatcher;
  store: SessionStore;
  logger: Logger;
  metrics: WebSocketMetrics;
  closes: Counter<'reason'>;
  rejections: Counter<'kind'>;
  counters: SocketCounters;
  admission: Admission;
  edge: EdgeLimits;
  /** Answers retained for resuming; without it a closed socket's turn is cancelled at once. */
  resumes?: ResumeDesk | undefined;
}

export interface AssistantConnectionInit {
  target: SocketTarget;
  /** Resolved at the upgrade: whose socket this is, with their limits. */
  principal: Principal;
  /** The session as opened at the upgrade (restored or fresh), owned by this socket's user. */
  session: SessionMetadata;
  /** The upgrade request's trace context: each turn is a new span of the same trace. */
  traceparent: string | undefined;
  /** A collaboration session's socket: its frames go to every member through the hub. */
  collab?: { hub: SessionHub; userId: string } | undefined;
}

type Counted = { inc(): void };

/**
 * One client on `/ws/assistant/<session_id>`: chat turns streamed as `stream_*` messages, control
 * messages, one turn at a time. Any bad input gets an `error` message and the socket stays usable. The
 * client's messages are rate-limited (token bucket), what is queued for it is bounded (a client that does
 * not read is closed with 1013 and its turn cancelled), and a socket whose token expires is closed (1008)
 * once its current answer is out.
 */
export class AssistantConnection {
  /** Cleared at each ping, set by the pong: a client that misses one is gone. */
  private alive = true;
  private closed = false;
  private savedAt = 0;
  private corked = false;
  /** Nothing more is sent: the socket is being closed by the gateway. */
  private ending = false;
  private closeReason: CloseReason = 'client';
  private expired = false;
  /** The answer last resumed on this socket: in a collaboration session its live frames are skipped (the replay has them). */
  private resumedAnswer: string | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  /** The running turn, or the resume being replayed (`resuming`, with its `cancel`): one at a time. */
  private turn: { requestId: string; controller: AbortController; resuming?: AbortController } | undefined;
  private readonly session: SessionMetadata;
  private readonly principal: Principal;
  /** The user of this socket's turns: the authenticated user, or (open mode) `?user_id=`. */
  private readonly socketUser: string | undefined;
  private readonly messages: TokenBucket;
  private readonly inbound: Counted;
  private readonly outbound: Counted;
  private readonly traceparent: string | undefined;
  /** Set on a collaboration session's socket: how its turns, typing and mode switches reach the other members. */
  private readonly link: CollabLink | undefined;
  private readonly isCollab: boolean;

  /** @param raw the connection under `socket`, as the HTTP upgrade handed it over (see `coalesceWrites`). */
  constructor(
    private readonly socket: WebSocket,
    private readonly raw: Duplex,
    init: AssistantConnectionInit,
    private readonly deps: AssistantConnectionDeps,
  ) {
    this.inbound = deps.metrics.messages.labels('inbound');
    this.outbound = deps.metrics.messages.labels('outbound');
    this.principal = init.principal;
    this.traceparent = init.traceparent;
    this.socketUser = init.principal.method === 'open' ? init.target.userId : init.principal.user_id;
    this.session = { ...init.session, user_id: init.session.user_id ?? this.socketUser ?? null };
    this.isCollab = init.collab !== undefined;
    this.messages = new TokenBucket(init.principal.limits.ws_messages_per_second, init.principal.limits.ws_message_burst);
    socket.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    socket.on('pong', () => {
      this.alive = true;
    });
    socket.on('close', () => this.onClose());
    socket.on('error', (err) => this.onSocketError(err));
    this.armExpiry();
    this.persist();
    this.send({
      type: 'connected',
      session_id: this.session.session_id,
      message: 'Connected to ActionEDx assistant',
      mode: this.session.mode,
      timestamp: new Date().toISOString(),
    });
    this.link = init.collab === undefined ? undefined : this.joinCollab(init.collab.hub, init.collab.userId);
  }

  /** This socket as a member of its collaboration session: frames from the others arrive through `deliver`. */
  private joinCollab(hub: SessionHub, userId: string): CollabLink {
    return hub.attach({
      sessionId: this.session.session_id,
      userId,
      connKey: hub.newConnKey(),
      deliver: (frame, requestId) => {
        // The answer this socket resumed comes from its replay, once and in order: not a second time live.
        if (requestId !== undefined && requestId === this.resumedAnswer) return;
        this.send(frame);
      },
      modeSwitched: (mode) => {
        this.session.mode = mode;
      },
      evict: () => this.end(CLOSE_NOT_A_MEMBER, 'not a member of this session any more', 'removed'),
    });
  }

  /**
   * A frame of this socket's own turn or action: to it, and to every other member of a collaboration session
   * (`requestId`: the answer a streamed frame belongs to).
   */
  private emit(frame: WsServerMessage, requestId?: string): void {
    this.send(frame);
    this.link?.publish(frame, requestId);
  }

  get streaming(): boolean {
    return this.turn !== undefined;
  }

  /** Bytes written to this socket and not yet taken by the client's TCP stack. */
  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  metadata(): SessionMetadata {
    return { ...this.session };
  }

  /** Called on every heartbeat tick. */
  heartbeat(): void {
    if (!this.alive) {
      this.closeReason = 'heartbeat';
      this.socket.terminate();
      return;
    }
    this.alive = false;
    try {
      this.socket.ping();
    } catch {
      // Not open any more: the close handler cleans up.
    }
  }

  /** A message the server pushes unasked (a job's progress): sent as is, if the socket is open. */
  push(message: JobEvent): void {
    this.send(message);
  }

  /** Shutdown: ask the client to reconnect elsewhere. */
  shutdown(): void {
    this.closeReason = 'shutdown';
    this.socket.close(1001, 'server shutting down');
  }

  terminate(): void {
    this.socket.terminate();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.deps.counters.messagesIn += 1;
    this.inbound.inc();
    if (this.closed || this.ending) return;
    if (!this.messages.take()) {
      this.deps.rejections.inc({ kind: 'ws_messages' });
      return this.sendError(
        new AppError('rate_limited', `At most ${this.principal.limits.ws_messages_per_second} messages per second on a WebSocket.`, {
          details: { limit: 'ws_messages' },
        }),
      );
    }
    let msg: WsClientMessage;
    try {
      msg = parseClientMessage(data, isBinary, this.deps.edge.bodyBytes, this.deps.edge.jsonMaxDepth);
    } catch (err) {
      return this.sendError(err);
    }
    switch (msg.type) {
      case undefined:
      case 'message':
      case 'chat':
        return this.startTurn(msg);
      case 'ping':
        return this.send({ type: 'pong', timestamp: new Date().toISOString() });
      case 'typing':
        return this.emit({
          type: 'typing',
          session_id: this.session.session_id,
          user_id: this.session.user_id,
          is_typing: msg.is_typing,
          timestamp: new Date().toISOString(),
        });
      case 'mode_switch':
        this.session.mode = msg.mode;
        this.persist();
        if (this.link !== undefined && this.session.user_id !== null) {
          this.link.switchMode(msg.mode, this.session.user_id);
          return this.send({ type: 'system', message: `Mode switched to ${msg.mode}.`, mode: msg.mode, event: 'mode_switched', user_id: this.session.user_id });
        }
        return this.send({ type: 'system', message: `Mode switched to ${msg.mode}.`, mode: msg.mode });
      case 'cancel':
        if (this.turn === undefined) return this.send({ type: 'system', message: 'No turn is running.' });
        // A resumed answer is stopped where it runs; the turn's own, here.
        (this.turn.resuming ?? this.turn.controller).abort();
        return;
      case 'resume':
        return this.resume(msg);
    }
  }

  /**
   * Replay an answer this user started (on this socket's session, on any replica): the chunks after `last_seq`,
   * the rest live, `stream_end` and `response`; or `resume_failed`. The socket's own user is checked against the
   * answer's owner, as authenticated at the upgrade; on a collaboration session any member may resume its answers.
   */
  private resume(msg: WsResume): void {
    if (this.turn !== undefined) return this.sendError(new AppError('busy'));
    const requestId = msg.request_id;
    const desk = this.deps.resumes;
    if (desk === undefined) {
      return this.send({ type: 'resume_failed', request_id: requestId, code: 'resume_unknown', message: resumeFailureMessage('resume_unknown') });
    }
    const controller = new AbortController();
    const cancel = new AbortController();
    this.turn = { requestId, controller, resuming: cancel };
    this.resumedAnswer = requestId;
    const userId = this.principal.method === 'open' ? this.socketUser : this.principal.user_id;
    void desk
      .resume(
        { requestId, lastSeq: msg.last_seq, userId, sessionId: this.session.session_id, sharedSession: this.isCollab, cancel: cancel.signal },
        {
          chunk: (content, seq) => this.send({ type: 'stream_chunk', content, seq }),
          reset: () => this.send({ type: 'stream_reset', request_id: requestId }),
          end: (response) => {
            this.send({ type: 'stream_end', request_id: requestId });
            this.send({ type: 'response', ...response });
          },
          failed: (code, response) =>
            this.send({
              type: 'resume_failed',
              request_id: requestId,
              code,
              message: resumeFailureMessage(code),
              ...(response ? { response } : {}),
            }),
          error: (err) => this.sendError(err, requestId),
        },
        controller.signal,
      )
      .finally(() => {
        if (this.turn?.controller === controller) this.turn = undefined;
        if (this.expired && this.turn === undefined) this.end(CLOSE_POLICY, 'token expired', 'token_expired');
      });
  }

  /**
   * The turn's user: authenticated, the socket's own (a turn naming another is refused); open mode, the
   * turn's `user_id` or the socket's `?user_id=`. The path names the session, the socket's mode fills in.
   */
  private startTurn(turn: WsChatTurn): void {
    if (this.turn !== undefined) return this.sendError(new AppError('busy'));
    const { type: _type, user_id: named, mode = this.session.mode, ...rest } = turn;
    // A collaboration session's turns are its members': the socket's user, whatever the mode.
    if ((this.principal.method !== 'open' || this.link !== undefined) && named !== undefined && named !== this.session.user_id) {
      return this.sendError(new AppError('user_mismatch'));
    }
    const userId = this.link !== undefined ? (this.session.user_id ?? undefined) : this.principal.method === 'open' ? (named ?? this.socketUser) : this.socketUser;
    if (userId === undefined) {
      return this.sendError(
        new AppError('validation_failed', 'user_id: give it in the message or in the URL (?user_id=).', {
          details: { field: 'user_id' },
        }),
      );
    }
    const request: ChatRequest = { ...rest, user_id: userId, mode, session_id: this.session.session_id };
    const ctx: RequestContext = { request_id: newRequestId(), traceparent: childTraceparent(this.traceparent) };
    const requestId = ctx.request_id;
    const controller = new AbortController();
    this.turn = { requestId, controller };
    const link = this.link;
    let release: (() => Promise<void>) | undefined;
    // Once the session's turn is taken, the answer's frames (an error too) go to every member.
    const out = (frame: WsServerMessage): void => (release !== undefined ? this.emit(frame, requestId) : this.send(frame));
    const finish = (): void => {
      this.turn = undefined;
      void release?.();
      // The token ran out while this answer streamed: it was the last one.
      if (this.expired) this.end(CLOSE_POLICY, 'token expired', 'token_expired');
    };
    const listener: DispatchListener = {
      onStart: () => out({ type: 'stream_start', request_id: requestId }),
      onChunk: (content, seq) => out({ type: 'stream_chunk', content, seq }),
      onReset: () => out({ type: 'stream_reset', request_id: requestId }),
    };
    let ticket: AdmissionTicket | undefined;
    runWithContext(ctx, async () => {
      if (link !== undefined) {
        // One turn at a time per session, across gateways: refused with `session_busy` while another is answered.
        release = await link.beginTurn(requestId);
        if (controller.signal.aborted) throw new AppError('cancelled');
        this.emit({ type: 'turn', session_id: this.session.session_id, request_id: requestId, user_id: userId, message: request.message, mode });
      }
      ticket = await this.deps.admission.admit(subjectOf(this.principal, userId));
      if (controller.signal.aborted) throw new AppError('cancelled');
      this.session.message_count += 1;
      // A busy session is saved every few seconds, not on every turn; closing saves the final count.
      if (Date.now() - this.savedAt >= TURN_SAVE_INTERVAL_MS) this.persist();
      this.deps.resumes?.opened(requestId, request);
      return this.deps.dispatcher.dispatch(request, ctx, { signal: controller.signal, listener });
    }).then(
      (outcome) => {
        ticket?.charge(outcome);
        const response = toChatResponse(outcome, requestId);
        this.deps.resumes?.finished(requestId, request, response);
        out({ type: 'stream_end', request_id: requestId });
        out({ type: 'response', ...response });
        finish();
      },
      (err: unknown) => {
        this.deps.resumes?.settled(requestId);
        if (!this.closed) this.sendError(err, requestId);
        if (release !== undefined) this.link?.publish(toErrorFrame(err, requestId));
        finish();
      },
    );
  }

  /** Close the socket from this side, once, with a reason the client can read and a metric label. */
  private end(code: number, reason: string, label: CloseReason): void {
    if (this.ending || this.closed) return;
    this.ending = true;
    this.closeReason = label;
    this.abandonTurn();
    this.socket.close(code, reason);
    // A client that does not read never answers the close: cut it, so its queued bytes are freed.
    setTimeout(() => {
      if (!this.closed) this.socket.terminate();
    }, CLOSE_GRACE_MS).unref();
  }

  /**
   * The socket is going. A single-user turn stops, and its worker too (the dispatcher publishes the cancel); a
   * collaboration turn belongs to the session: its answer goes on to the other members (a `cancel` stops it).
   */
  private abandonTurn(): void {
    if (!this.isCollab) this.turn?.controller.abort();
  }

  private armExpiry(): void {
    const at = this.principal.expires_at;
    if (at === undefined) return;
    const wait = at - Date.now();
    this.expiryTimer = setTimeout(() => {
      if (Date.now() < at) return this.armExpiry();
      this.expired = true;
      if (this.turn === undefined) this.end(CLOSE_POLICY, 'token expired', 'token_expired');
    }, Math.max(0, Math.min(wait, MAX_TIMER_MS)));
    this.expiryTimer.unref();
  }

  private onClose(): void {
    this.closed = true;
    this.link?.detach();
    clearTimeout(this.expiryTimer);
    // A collaboration turn belongs to the session: its answer goes on to the other members (a `cancel` stops it).
    // A client that left (a network cut, a reload) may resume its answer on any replica: it keeps running for the
    // grace. Sent away by the gateway: the worker stops now (the dispatcher cancels). A replay just stops.
    const turn = this.turn;
    if (turn !== undefined && !this.isCollab) {
      const desk = this.deps.resumes;
      const resumable = turn.resuming === undefined && (this.closeReason === 'client' || this.closeReason === 'heartbeat');
      if (desk !== undefined && resumable) desk.detach(turn.requestId, () => turn.controller.abort());
      else turn.controller.abort();
    }
    this.persist();
    this.deps.closes.inc({ reason: this.closeReason });
    this.deps.logger.info(
      { session_id: this.session.session_id, message_count: this.session.message_count, reason: this.closeReason },
      'websocket closed',
    );
  }

  /**
   * Frames that arrive together (one bus read can hold many chunks of one answer) leave in one socket
   * write instead of one system call each: the connection is corked until the end of this tick. Each frame
   * stays its own WebSocket message (the seed's client reads one JSON object per message).
   */
  private coalesceWrites(): void {
    if (this.corked || this.raw.destroyed) return;
    this.corked = true;
    // cork/uncork nest, so ws's own corking inside a send still works.
    this.raw.cork();
    process.nextTick(() => {
      this.corked = false;
      this.raw.uncork();
    });
  }

  /** Write the session in the background; the store's failures never reach the socket. */
  private persist(): void {
    this.savedAt = Date.now();
    // A collaboration session lives in the session hub's store, not in this user's single-user sessions.
    if (this.isCollab) return;
    this.deps.store.save(this.session).catch((err: unknown) => {
      this.deps.logger.warn({ err, session_id: this.session.session_id }, 'could not save the session');
    });
  }

  private onSocketError(err: Error & { code?: string }): void {
    const type = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'payload_too_large' : 'socket';
    this.deps.metrics.errors.inc({ type });
    this.deps.counters.errors += 1;
    this.deps.logger.debug({ err, session_id: this.session.session_id }, 'websocket error');
  }

  private sendError(err: unknown, requestId?: string): void {
    const frame = toErrorFrame(err, requestId);
    this.deps.metrics.errors.inc({ type: frame.code });
    this.deps.counters.errors += 1;
    if (frame.code === 'internal') this.deps.logger.error({ err, request_id: requestId }, 'websocket turn failed');
    else this.deps.logger.debug({ code: frame.code, request_id: requestId }, 'websocket error sent');
    this.send(frame);
  }

  /**
   * One message to the client, unless it has stopped reading: past `wsSendBufferBytes` queued, nothing more
   * is relayed, its turn is cancelled upstream and the socket is closed (1013).
   */
  private send(message: WsServerMessage): void {
    if (this.ending || this.socket.readyState !== WebSocket.OPEN) return;
    if (this.socket.bufferedAmount > this.deps.edge.wsSendBufferBytes) {
      this.deps.logger.warn(
        { session_id: this.session.session_id, buffered_bytes: this.socket.bufferedAmount },
        'websocket client is not reading: closing it',
      );
      return this.end(CLOSE_TRY_LATER, 'send buffer full: the client is not reading', 'send_buffer_full');
    }
    this.coalesceWrites();
    this.socket.send(JSON.stringify(message));
    this.deps.counters.messagesOut += 1;
    this.outbound.inc();
  }
}
