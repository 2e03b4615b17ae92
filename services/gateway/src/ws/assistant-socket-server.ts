import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError, Headers, acceptRequestId, childTraceparent, type Logger } from '@actionedx/shared';
import type { ChatDispatcher } from '../chat/chat-dispatcher.js';
import type { JobPushHub } from '../jobs/job-push-hub.js';
import type { GatewayMetrics } from '../metrics.js';
import { settledWithin } from '../settled-within.js';
import { AssistantConnection } from './assistant-connection.js';
import type { SessionStore } from './session-store.js';
import { parseSocketTarget, type SocketTarget } from './socket-target.js';
import { SocketCounters, type WebSocketStats } from './websocket-stats.js';

/**
 * Messages up to this many times the body limit are read and answered with a `payload_too_large` error
 * message (the socket lives on); only beyond it does ws close the socket with 1009.
 */
const OVERSIZE_FACTOR = 4;
/** Sessions listed by the stats endpoint at most. */
const STATS_SESSIONS_MAX = 1_000;
/** A client that does not answer a close within this is cut off. */
const CLOSE_WAIT_MS = 1_000;

export interface AssistantSocketServerDeps {
  dispatcher: ChatDispatcher;
  store: SessionStore;
  logger: Logger;
  metrics: Pick<GatewayMetrics, 'ws'>;
  bodyLimitBytes: number;
  /** Heartbeat pings; a client that misses one is dropped. */
  pingIntervalMs: number;
  /** Job events (`job_progress`, `job_done`, `job_failed`) pushed to every socket of their owner. */
  jobPushes?: JobPushHub;
}

function rejectUpgrade(socket: Duplex, err: AppError, requestId: string): void {
  const body = JSON.stringify(err.toJSON(requestId));
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `${Headers.requestId}: ${requestId}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/** The assistant's WebSocket endpoint, sharing the HTTP server's port (upgrade on `/ws/assistant/<id>`). */
export class AssistantSocketServer {
  readonly wss: WebSocketServer;
  /** Each open connection and a promise settled when its socket closes. */
  private readonly connections = new Map<AssistantConnection, Promise<void>>();
  private readonly counters = new SocketCounters();
  private heartbeat: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(private readonly deps: AssistantSocketServerDeps) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: deps.bodyLimitBytes * OVERSIZE_FACTOR,
      clientTracking: false,
      perMessageDeflate: false,
    });
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.heartbeat = setInterval(() => {
      for (const c of this.connections.keys()) c.heartbeat();
    }, this.deps.pingIntervalMs);
    this.heartbeat.unref();
  }

  stats(): WebSocketStats {
    const sessions: WebSocketStats['sessions'] = [];
    for (const c of this.connections.keys()) {
      if (sessions.length >= STATS_SESSIONS_MAX) break;
      sessions.push({ ...c.metadata(), streaming: c.streaming });
    }
    return {
      active_connections: this.connections.size,
      total_connections: this.counters.total,
      messages_in: this.counters.messagesIn,
      messages_out: this.counters.messagesOut,
      errors: this.counters.errors,
      sessions,
      sessions_truncated: this.connections.size > sessions.length,
    };
  }

  /** Refuse new sockets from now on (503 shutting_down). */
  stopAccepting(): void {
    this.closing = true;
  }

  /** Close every socket with 1001 (going away), cutting off those that do not answer. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    const closed = [...this.connections.values()];
    for (const c of this.connections.keys()) c.shutdown();
    if (closed.length > 0) {
      await settledWithin(Promise.all(closed), CLOSE_WAIT_MS);
      for (const c of this.connections.keys()) c.terminate();
    }
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {}); // a client vanishing mid-handshake is not our error
    const requestId = acceptRequestId(req.headers[Headers.requestId] as string | undefined);
    if (this.closing) return rejectUpgrade(socket, new AppError('shutting_down'), requestId);
    let target: SocketTarget;
    try {
      target = parseSocketTarget(req.url);
    } catch (err) {
      this.deps.metrics.ws.errors.inc({ type: 'rejected_upgrade' });
      return rejectUpgrade(socket, err instanceof AppError ? err : new AppError('not_found'), requestId);
    }
    const traceparent = childTraceparent(req.headers[Headers.traceparent] as string | undefined);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, socket, target, traceparent));
  }

  /** `raw` is the connection the upgrade took over: the connection keeps it to batch its writes. */
  private accept(ws: WebSocket, raw: Duplex, target: SocketTarget, traceparent: string): void {
    const { dispatcher, store, logger, bodyLimitBytes } = this.deps;
    const metrics = this.deps.metrics.ws;
    const connection = new AssistantConnection(
      ws,
      raw,
      target,
      { dispatcher, store, logger, metrics, counters: this.counters, bodyLimitBytes },
      traceparent,
    );
    logger.info({ session_id: target.sessionId }, 'websocket connected');
    this.counters.total += 1;
    metrics.active.inc();
    const detachJobs = target.userId ? this.deps.jobPushes?.attach(target.userId, (e) => connection.push(e)) : undefined;
    const closed = new Promise<void>((resolve) =>
      ws.once('close', () => {
        detachJobs?.();
        this.connections.delete(connection);
        metrics.active.dec();
        resolve();
      }),
    );
    this.connections.set(connection, closed);
  }
}
