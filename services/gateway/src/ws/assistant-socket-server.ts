import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError, Headers, acceptRequestId, childTraceparent, type Logger } from '@actionedx/shared';
import type { Admission } from '../admission/admission.js';
import type { ConnectionSlots, SlotClaim } from '../admission/connection-slots.js';
import type { EdgeLimits } from '../admission/limits.js';
import type { Authenticator } from '../auth/authenticator.js';
import { challenge, credentialOf } from '../auth/http-auth.js';
import { isAdmin, type Principal } from '../auth/principal.js';
import type { ChatDispatcher } from '../chat/chat-dispatcher.js';
import type { ResumeDesk } from '../resume/resume-desk.js';
import type { JobPushHub } from '../jobs/job-push-hub.js';
import { isCollabSessionId, type SessionHub } from '../sessions/session-hub.js';
import type { GatewayMetrics } from '../metrics.js';
import { settledWithin } from '../settled-within.js';
import { AssistantConnection } from './assistant-connection.js';
import type { SessionMetadata, SessionStore } from './session-store.js';
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
/** A session store slower than this is skipped: the socket opens with a fresh session, not saved. */
const OPEN_SESSION_TIMEOUT_MS = 1_000;

export interface AssistantSocketServerDeps {
  dispatcher: ChatDispatcher;
  store: SessionStore;
  logger: Logger;
  metrics: Pick<GatewayMetrics, 'ws' | 'wsCloses' | 'admission'>;
  authenticator: Authenticator;
  admission: Admission;
  slots: ConnectionSlots;
  /** Origins a browser may open a socket from (CORS_ORIGINS); `*` for any. A request without Origin is not a browser's. */
  origins: readonly string[];
  edge: EdgeLimits;
  /** Heartbeat pings; a client that misses one is dropped. */
  pingIntervalMs: number;
  /** Job events (`job_progress`, `job_done`, `job_failed`) pushed to every socket of their owner. */
  jobPushes?: JobPushHub;
  /** Answers retained for a `resume` on any replica; without it a closed socket's turn is cancelled at once. */
  resumes?: ResumeDesk | undefined;
  /** Collaboration sessions (`cs_...` ids): members only, frames fanned out to every member. */
  sessions?: SessionHub;
}

/**
 * Whether a browser's Origin is the page the gateway serves itself (`GET /`): its host and port are the
 * request's Host. Another site's page cannot forge its Origin, so this lets no foreign page in.
 */
export function sameHost(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

function rejectUpgrade(socket: Duplex, err: AppError, requestId: string, extra: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(err.toJSON(requestId));
  const headers = Object.entries(extra).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `${Headers.requestId}: ${requestId}\r\n` +
      'X-Content-Type-Options: nosniff\r\n' +
      'Cache-Control: no-store\r\n' +
      headers +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/** A refusal of the upgrade, with the headers its status needs. */
class UpgradeRefusal extends Error {
  constructor(
    readonly error: AppError,
    readonly headers: Record<string, string> = {},
    readonly metric = error.code,
  ) {
    super(error.message);
    this.name = 'UpgradeRefusal';
  }
}

/**
 * The assistant's WebSocket endpoint, sharing the HTTP server's port (upgrade on `/ws/assistant/<id>`).
 * Everything is decided in the upgrade handler, before the socket is accepted: the path, the Origin, the
 * credential, the user's connection cap and the session's owner. A refused upgrade is a plain HTTP answer.
 */
export class AssistantSocketServer {
  readonly wss: WebSocketServer;
  /** Each open connection and a promise settled when its socket closes. */
  private readonly connections = new Map<AssistantConnection, Promise<void>>();
  private readonly counters = new SocketCounters();
  private readonly anyOrigin: boolean;
  private readonly origins: ReadonlySet<string>;
  private heartbeat: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(private readonly deps: AssistantSocketServerDeps) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: deps.edge.bodyBytes * OVERSIZE_FACTOR,
      clientTracking: false,
      perMessageDeflate: false,
    });
    this.anyOrigin = deps.origins.includes('*');
    this.origins = new Set(deps.origins);
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.onUpgrade(req, socket, head));
    this.heartbeat = setInterval(() => {
      for (const c of this.connections.keys()) c.heartbeat();
    }, this.deps.pingIntervalMs);
    this.heartbeat.unref();
    this.deps.slots.start();
  }

  /** This gateway's sockets; the sessions (with their users) only for an administrator. */
  stats(viewer?: Principal): WebSocketStats {
    const sessions: WebSocketStats['sessions'] = [];
    const listSessions = viewer === undefined || isAdmin(viewer);
    if (listSessions) {
      for (const c of this.connections.keys()) {
        if (sessions.length >= STATS_SESSIONS_MAX) break;
        sessions.push({ ...c.metadata(), streaming: c.streaming });
      }
    }
    return {
      active_connections: this.connections.size,
      total_connections: this.counters.total,
      messages_in: this.counters.messagesIn,
      messages_out: this.counters.messagesOut,
      errors: this.counters.errors,
      sessions,
      sessions_truncated: listSessions && this.connections.size > sessions.length,
    };
  }

  /** Bytes queued for all clients now (what slow readers hold). */
  bufferedBytes(): number {
    let n = 0;
    for (const c of this.connections.keys()) n += c.bufferedAmount;
    return n;
  }

  /** Refuse new sockets from now on (503 shutting_down). */
  stopAccepting(): void {
    this.closing = true;
  }

  /** Close every socket with 1001 (going away), cutting off those that do not answer. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.deps.slots.stop();
    const closed = [...this.connections.values()];
    for (const c of this.connections.keys()) c.shutdown();
    if (closed.length > 0) {
      await settledWithin(Promise.all(closed), CLOSE_WAIT_MS);
      for (const c of this.connections.keys()) c.terminate();
    }
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  /** No Origin (not a browser), the gateway's own page (same host), or a listed origin. */
  private originAllowed(origin: string | undefined, host: string | undefined): boolean {
    return origin === undefined || this.anyOrigin || this.origins.has(origin) || sameHost(origin, host);
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => {}); // a client vanishing mid-handshake is not our error
    const requestId = acceptRequestId(req.headers[Headers.requestId] as string | undefined);
    let claim: SlotClaim | undefined;
    try {
      if (this.closing) throw new UpgradeRefusal(new AppError('shutting_down'));
      const { target, principal, claimed, session, collab } = await this.admit(req);
      claim = claimed;
      if (socket.destroyed) throw new UpgradeRefusal(new AppError('cancelled'));
      const traceparent = childTraceparent(req.headers[Headers.traceparent] as string | undefined);
      const held = claim;
      claim = undefined; // the connection owns it from here
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, socket, target, principal, session, held, traceparent, collab));
    } catch (err) {
      if (claim !== undefined) this.deps.slots.release(claim);
      const refusal = err instanceof UpgradeRefusal ? err : new UpgradeRefusal(err instanceof AppError ? err : new AppError('internal', undefined, { cause: err }));
      if (refusal.error.code === 'internal') this.deps.logger.error({ err }, 'websocket upgrade failed');
      this.deps.metrics.ws.errors.inc({ type: refusal.metric === 'not_found' || refusal.metric === 'validation_failed' ? 'rejected_upgrade' : refusal.metric });
      rejectUpgrade(socket, refusal.error, requestId, refusal.headers);
    }
  }

  /** Path, origin, credential, connection cap, session owner: in that order, the cheap checks first. */
  private async admit(req: IncomingMessage): Promise<{
    target: SocketTarget;
    principal: Principal;
    claimed: SlotClaim | undefined;
    session: { metadata: SessionMetadata; saved: boolean };
    collab: string | undefined;
  }> {
    const { authenticator, slots, metrics, store } = this.deps;
    let target: SocketTarget;
    try {
      target = parseSocketTarget(req.url);
    } catch (err) {
      throw new UpgradeRefusal(err instanceof AppError ? err : new AppError('not_found'));
    }
    if (!this.originAllowed(req.headers.origin, req.headers.host)) throw new UpgradeRefusal(new AppError('origin_not_allowed'));

    let principal: Principal;
    if (authenticator.mode === 'open') {
      principal = authenticator.openPrincipal(target.userId);
    } else {
      const query = new URL(req.url ?? '/', 'http://gateway.invalid').searchParams;
      const credential = credentialOf(req, { query });
      try {
        principal = await authenticator.authenticate(credential, 'ws');
      } catch (err) {
        const e = err instanceof AppError ? err : new AppError('internal', undefined, { cause: err });
        throw new UpgradeRefusal(e, e.status === 401 ? { 'WWW-Authenticate': challenge(e, credential !== undefined) } : {});
      }
      if (target.userId !== undefined && target.userId !== principal.user_id) throw new UpgradeRefusal(new AppError('user_mismatch'));
    }
    const userId = principal.user_id ?? null;
    // A collaboration session: its members only (403 not_a_member), whatever holds the connection slots.
    const collab = isCollabSessionId(target.sessionId) && this.deps.sessions !== undefined
      ? await this.deps.sessions.admit(target.sessionId, userId ?? undefined).catch((err: unknown) => {
          throw new UpgradeRefusal(err instanceof AppError ? err : new AppError('internal', undefined, { cause: err }));
        })
      : undefined;

    let claimed: SlotClaim | undefined;
    if (userId !== null) {
      try {
        claimed = await slots.acquire(userId, principal.limits.ws_connections);
      } catch (err) {
        metrics.admission.limiterErrors.inc({ operation: 'connection' });
        throw new UpgradeRefusal(new AppError('limiter_unavailable', undefined, { cause: err }));
      }
      if (claimed === undefined) {
        metrics.admission.rejections.inc({ kind: 'ws_connections' });
        throw new UpgradeRefusal(
          new AppError('too_many_connections', `At most ${principal.limits.ws_connections} WebSockets at once per user.`),
          { 'Retry-After': '5' },
        );
      }
    }
    try {
      const fresh: SessionMetadata = {
        session_id: target.sessionId,
        user_id: userId,
        connected_at: new Date().toISOString(),
        message_count: 0,
        mode: collab?.mode ?? 'strategist',
      };
      // Its metadata is the hub's (mode, members), not one user's single-user session.
      if (collab !== undefined) return { target, principal, claimed, session: { metadata: fresh, saved: false }, collab: userId ?? undefined };
      const opened = await settledWithin(store.open(fresh), OPEN_SESSION_TIMEOUT_MS);
      if (opened === 'taken') throw new UpgradeRefusal(new AppError('not_found', 'No such session.'));
      const session = opened === undefined ? { metadata: fresh, saved: false } : { metadata: opened.session, saved: true };
      return { target, principal, claimed, session, collab: undefined };
    } catch (err) {
      if (claimed !== undefined) slots.release(claimed);
      throw err;
    }
  }

  /** `raw` is the connection the upgrade took over: the connection keeps it to batch its writes. */
  private accept(
    ws: WebSocket,
    raw: Duplex,
    target: SocketTarget,
    principal: Principal,
    session: { metadata: SessionMetadata; saved: boolean },
    claim: SlotClaim | undefined,
    traceparent: string,
    collabUser: string | undefined,
  ): void {
    const { dispatcher, store, logger, admission, edge } = this.deps;
    const metrics = this.deps.metrics;
    const connection = new AssistantConnection(
      ws,
      raw,
      {
        target,
        principal,
        session: session.metadata,
        traceparent,
        collab: collabUser !== undefined && this.deps.sessions !== undefined ? { hub: this.deps.sessions, userId: collabUser } : undefined,
      },
      {
        dispatcher,
        store,
        logger,
        metrics: metrics.ws,
        closes: metrics.wsCloses,
        rejections: metrics.admission.rejections,
        counters: this.counters,
        admission,
        edge,
        resumes: this.deps.resumes,
      },
    );
    logger.info({ session_id: target.sessionId, method: principal.method }, 'websocket connected');
    this.counters.total += 1;
    metrics.ws.active.inc();
    // Job events of the socket's user (authenticated, or named in open mode), pushed whichever replica publishes them.
    const jobsUser = principal.user_id ?? session.metadata.user_id ?? undefined;
    const detachJobs = jobsUser !== undefined ? this.deps.jobPushes?.attach(jobsUser, (e) => connection.push(e)) : undefined;
    const closed = new Promise<void>((resolve) =>
      ws.once('close', () => {
        detachJobs?.();
        this.connections.delete(connection);
        if (claim !== undefined) this.deps.slots.release(claim);
        metrics.ws.active.dec();
        resolve();
      }),
    );
    this.connections.set(connection, closed);
  }
}
