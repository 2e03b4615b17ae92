import type { Duplex } from 'node:stream';
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
  type WsServerMessage,
} from '@actionedx/shared';
import type { ChatDispatcher } from '../chat/chat-dispatcher.js';
import { toChatResponse, type DispatchListener } from '../chat/dispatch-types.js';
import { settledWithin } from '../settled-within.js';
import { parseClientMessage } from './client-messages.js';
import { toErrorFrame } from './error-frame.js';
import type { SessionMetadata, SessionStore } from './session-store.js';
import type { SocketTarget } from './socket-target.js';
import type { SocketCounters } from './websocket-stats.js';

/** A session store slower than this is skipped: the socket opens with a fresh session. */
const RESTORE_TIMEOUT_MS = 1_000;
/** Turns save the session at most this often. */
const TURN_SAVE_INTERVAL_MS = 5_000;

export interface AssistantConnectionDeps {
  dispatcher: ChatDispatcher;
  store: SessionStore;
  logger: Logger;
  metrics: WebSocketMetrics;
  counters: SocketCounters;
  bodyLimitBytes: number;
}

type Counted = { inc(): void };

/**
 * One client on `/ws/assistant/<session_id>`: chat turns streamed as `stream_*` messages, control
 * messages, one turn at a time. Any bad input gets an `error` message and the socket stays usable.
 */
export class AssistantConnection {
  /** Cleared at each ping, set by the pong: a client that misses one is gone. */
  private alive = true;
  private closed = false;
  private savedAt = 0;
  private corked = false;
  private turn: { requestId: string; controller: AbortController } | undefined;
  private readonly session: SessionMetadata;
  private readonly ready: Promise<void>;
  private readonly inbound: Counted;
  private readonly outbound: Counted;

  /**
   * @param raw the connection under `socket`, as the HTTP upgrade handed it over (see `coalesceWrites`).
   * @param traceparent the upgrade request's trace context: each turn is a new span of the same trace.
   */
  constructor(
    private readonly socket: WebSocket,
    private readonly raw: Duplex,
    target: SocketTarget,
    private readonly deps: AssistantConnectionDeps,
    private readonly traceparent: string | undefined,
  ) {
    this.inbound = deps.metrics.messages.labels('inbound');
    this.outbound = deps.metrics.messages.labels('outbound');
    this.session = {
      session_id: target.sessionId,
      user_id: target.userId ?? null,
      connected_at: new Date().toISOString(),
      message_count: 0,
      mode: 'strategist',
    };
    // Listeners first: messages that arrive while the session loads wait for it, in order.
    socket.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    socket.on('pong', () => {
      this.alive = true;
    });
    socket.on('close', () => this.onClose());
    socket.on('error', (err) => this.onSocketError(err));
    this.ready = this.restore();
  }

  get streaming(): boolean {
    return this.turn !== undefined;
  }

  metadata(): SessionMetadata {
    return { ...this.session };
  }

  /** Called on every heartbeat tick. */
  heartbeat(): void {
    if (!this.alive) {
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
    this.socket.close(1001, 'server shutting down');
  }

  terminate(): void {
    this.socket.terminate();
  }

  /** Resolves in every case: a store that fails or hangs leaves a fresh session. */
  private async restore(): Promise<void> {
    const stored = await settledWithin(this.deps.store.load(this.session.session_id), RESTORE_TIMEOUT_MS);
    if (stored !== undefined) {
      this.session.message_count += stored.message_count;
      this.session.mode = stored.mode;
      this.session.user_id ??= stored.user_id;
    }
    this.persist();
    this.send({
      type: 'connected',
      session_id: this.session.session_id,
      message: 'Connected to ActionEDx assistant',
      mode: this.session.mode,
      timestamp: new Date().toISOString(),
    });
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.deps.counters.messagesIn += 1;
    this.inbound.inc();
    void this.ready.then(() => this.handle(data, isBinary));
  }

  private handle(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    let msg: WsClientMessage;
    try {
      msg = parseClientMessage(data, isBinary, this.deps.bodyLimitBytes);
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
        return this.send({
          type: 'typing',
          session_id: this.session.session_id,
          user_id: this.session.user_id,
          is_typing: msg.is_typing,
          timestamp: new Date().toISOString(),
        });
      case 'mode_switch':
        this.session.mode = msg.mode;
        this.persist();
        return this.send({ type: 'system', message: `Mode switched to ${msg.mode}.`, mode: msg.mode });
      case 'cancel':
        if (this.turn === undefined) return this.send({ type: 'system', message: 'No turn is running.' });
        this.turn.controller.abort();
        return;
    }
  }

  /** The socket's `?user_id=` and current mode fill in what the turn leaves out; the path names the session. */
  private startTurn(turn: WsChatTurn): void {
    if (this.turn !== undefined) return this.sendError(new AppError('busy'));
    const { type: _type, user_id: userId = this.session.user_id ?? undefined, mode = this.session.mode, ...rest } = turn;
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
    this.session.message_count += 1;
    // A busy session is saved every few seconds, not on every turn; closing saves the final count.
    if (Date.now() - this.savedAt >= TURN_SAVE_INTERVAL_MS) this.persist();
    const listener: DispatchListener = {
      onStart: () => this.send({ type: 'stream_start', request_id: requestId }),
      onChunk: (content, seq) => this.send({ type: 'stream_chunk', content, seq }),
      onReset: () => this.send({ type: 'stream_reset', request_id: requestId }),
    };
    runWithContext(ctx, () => this.deps.dispatcher.dispatch(request, ctx, { signal: controller.signal, listener })).then(
      (outcome) => {
        this.turn = undefined;
        this.send({ type: 'stream_end', request_id: requestId });
        this.send({ type: 'response', ...toChatResponse(outcome, requestId) });
      },
      (err: unknown) => {
        this.turn = undefined;
        if (!this.closed) this.sendError(err, requestId);
      },
    );
  }

  private onClose(): void {
    this.closed = true;
    // The client is gone: the worker stops too (the dispatcher publishes the cancel).
    this.turn?.controller.abort();
    void this.ready.then(() => this.persist());
    this.deps.logger.info(
      { session_id: this.session.session_id, message_count: this.session.message_count },
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

  private send(message: WsServerMessage): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.coalesceWrites();
    this.socket.send(JSON.stringify(message));
    this.deps.counters.messagesOut += 1;
    this.outbound.inc();
  }
}
