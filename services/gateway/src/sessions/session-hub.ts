import { randomBytes } from 'node:crypto';
import {
  AppError,
  COLLAB_SESSION_ID,
  Subjects,
  decodeJson,
  encodeJson,
  type Bus,
  type BusMessage,
  type BusSubscription,
  type Logger,
  type Mode,
  type SessionMember,
  type WsServerMessage,
} from '@actionedx/shared';
import type { GatewayMetrics } from '../metrics.js';
import type { CollabSession, CollabStore } from './collab-store.js';
import { SessionEventSchema, type SessionEvent } from './session-events.js';

/** Limits and timers of collaboration sessions (`SESSION_*`). */
export interface SessionLimits {
  /** Members per session, the owner included (SESSION_MAX_MEMBERS). */
  maxMembers: number;
  /** A socket's presence entry lives this long unless its gateway renews it (a third of it); a dead gateway's members go offline after it (SESSION_PRESENCE_TTL_MS). */
  presenceTtlMs: number;
  /** The turn lock's lease, renewed while the answer streams (a dead gateway's turn frees the session after it) (SESSION_TURN_LEASE_MS). */
  turnLeaseMs: number;
}

/** A member's socket on this gateway, as the hub sees it. */
export interface LocalMember {
  readonly sessionId: string;
  readonly userId: string;
  /** Unique across gateways. */
  readonly connKey: string;
  /**
   * Sends one frame, within the socket's send-buffer cap (a slow socket is closed, never waited for);
   * `requestId`: the answer a streamed frame belongs to.
   */
  deliver(frame: WsServerMessage, requestId?: string): void;
  /** The session's mode was switched by another member. */
  modeSwitched(mode: Mode): void;
  /** The member was removed from the session: close the socket. */
  evict(): void;
}

/** What a member's socket does on its session, through the hub. */
export interface CollabLink {
  /** A frame for every other member socket of the session (every gateway); `requestId`: its answer, if any. */
  publish(frame: WsServerMessage, requestId?: string): void;
  /** Takes the session's turn, or throws `session_busy`; resolves with the release. */
  beginTurn(requestId: string): Promise<() => Promise<void>>;
  switchMode(mode: Mode, by: string): void;
  detach(): void;
}

export interface SessionHubDeps {
  bus: Bus;
  store: CollabStore;
  logger: Logger;
  metrics: GatewayMetrics['sessions'];
  limits: SessionLimits;
  gatewayId: string;
}

/**
 * A turn that has just ended still holds the lock while its last frames are flushed: a member who answers its
 * `response` at once waits this long for it (re-trying every `BUSY_RETRY_MS`) before being told `session_busy`.
 */
const BUSY_GRACE_MS = 1_000;
const BUSY_RETRY_MS = 25;
/** How long a turn's release waits for its last frames to reach the bus server (so the next turn's follow them). */
const RELEASE_FLUSH_MS = 500;

export const isCollabSessionId = (id: string): boolean => COLLAB_SESSION_ID.test(id);

/**
 * The collaboration sessions of this gateway: its member sockets by session, one bus subscription per session
 * with a member here (`session.<id>.events`), presence heartbeats, the turn lock. Frames of a session go
 * through the bus to every gateway, each delivering them to its own sockets in the order they arrived, so every
 * member sees one order. Presence is re-read on a timer, so a dead gateway's members drop out after the TTL
 * without anyone announcing it.
 */
export class SessionHub {
  private readonly local = new Map<string, { members: Set<LocalMember>; sub: BusSubscription; seen: string }>();
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private readonly fanoutOut;
  private readonly fanoutIn;

  constructor(private readonly deps: SessionHubDeps) {
    this.fanoutOut = deps.metrics.fanout.labels('published');
    this.fanoutIn = deps.metrics.fanout.labels('delivered');
  }

  get limits(): SessionLimits {
    return this.deps.limits;
  }

  get store(): CollabStore {
    return this.deps.store;
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), Math.max(100, Math.floor(this.deps.limits.presenceTtlMs / 3)));
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    for (const s of this.local.values()) s.sub.unsubscribe();
    this.local.clear();
  }

  /** A key for a new socket, unique across gateways. */
  newConnKey(): string {
    return `${this.deps.gatewayId}.${++this.seq}.${randomBytes(3).toString('hex')}`;
  }

  /**
   * The session a socket opens, when the user may: `not_found` for no such session, `not_a_member` for a user
   * who is not one, `sessions_unavailable` when the store cannot say (refused: membership is never guessed).
   */
  async admit(sessionId: string, userId: string | undefined): Promise<CollabSession> {
    let session: CollabSession | undefined;
    let role: string | undefined;
    try {
      session = await this.deps.store.get(sessionId);
      role = session && userId !== undefined ? await this.deps.store.role(sessionId, userId) : undefined;
    } catch (err) {
      throw new AppError('sessions_unavailable', undefined, { cause: err });
    }
    if (session === undefined) throw new AppError('not_found', 'No such session.');
    if (role === undefined) throw new AppError('not_a_member');
    return session;
  }

  /** The members with their presence, the owner first. */
  async view(sessionId: string): Promise<SessionMember[]> {
    const [members, present] = await Promise.all([this.deps.store.members(sessionId), this.deps.store.presence(sessionId)]);
    return [...members].map(([user_id, role]) => {
      const connections = present.get(user_id) ?? 0;
      return { user_id, role, online: connections > 0, connections };
    });
  }

  /** A member's socket here joins its session's fan-out; the returned link is how it speaks to the others. */
  attach(member: LocalMember): CollabLink {
    const { sessionId } = member;
    let entry = this.local.get(sessionId);
    if (entry === undefined) {
      const sub = this.deps.bus.subscribe(Subjects.sessionEvents(sessionId), (msg) => this.onEvent(sessionId, msg));
      entry = { members: new Set(), sub, seen: '' };
      this.local.set(sessionId, entry);
    }
    entry.members.add(member);
    this.deps.metrics.members.inc();
    this.deps.metrics.churn.inc({ change: 'join' });
    void this.deps.store
      .keepAlive(sessionId)
      .then(() => this.deps.store.touchPresence(sessionId, member.connKey, member.userId, this.deps.limits.presenceTtlMs))
      .then(() => this.announcePresence(sessionId))
      .catch((err: unknown) => this.deps.logger.warn({ err, session_id: sessionId }, 'could not record presence'));
    let detached = false;
    return {
      publish: (frame, requestId) =>
        this.publish(sessionId, requestId === undefined ? { origin: member.connKey, frame } : { origin: member.connKey, request_id: requestId, frame }),
      beginTurn: (requestId) => this.beginTurn(sessionId, requestId),
      switchMode: (mode, by) => {
        this.deps.store.setMode(sessionId, mode).catch((err: unknown) => this.deps.logger.warn({ err, session_id: sessionId }, 'could not save the mode'));
        this.publish(sessionId, {
          origin: member.connKey,
          frame: { type: 'system', message: `${by} switched the mode to ${mode}.`, mode, event: 'mode_switched', user_id: by },
        });
      },
      detach: () => {
        if (detached) return;
        detached = true;
        this.detach(member);
      },
    };
  }

  /** A member joined (REST): a notice to every member socket, then the new presence. */
  async memberJoined(sessionId: string, userId: string): Promise<void> {
    this.publish(sessionId, { frame: { type: 'system', message: `${userId} joined the session.`, event: 'member_joined', user_id: userId } });
    await this.announcePresence(sessionId);
  }

  /** A member left or was removed (REST): their sockets are closed, the others told. */
  async memberLeft(sessionId: string, userId: string): Promise<void> {
    this.publish(sessionId, {
      evict: userId,
      frame: { type: 'system', message: `${userId} left the session.`, event: 'member_left', user_id: userId },
    });
    await this.announcePresence(sessionId);
  }

  private detach(member: LocalMember): void {
    const { sessionId } = member;
    const entry = this.local.get(sessionId);
    if (entry?.members.delete(member)) {
      this.deps.metrics.members.dec();
      this.deps.metrics.churn.inc({ change: 'leave' });
      if (entry.members.size === 0) {
        entry.sub.unsubscribe();
        this.local.delete(sessionId);
      }
    }
    void this.deps.store
      .dropPresence(sessionId, member.connKey, member.userId)
      .then(() => this.announcePresence(sessionId))
      .catch((err: unknown) => this.deps.logger.warn({ err, session_id: sessionId }, 'could not clear presence'));
  }

  private async beginTurn(sessionId: string, requestId: string): Promise<() => Promise<void>> {
    const { store, limits } = this.deps;
    let taken = false;
    const giveUpAt = Date.now() + BUSY_GRACE_MS;
    try {
      for (;;) {
        taken = await store.acquireTurn(sessionId, requestId, limits.turnLeaseMs);
        if (taken || Date.now() >= giveUpAt) break;
        await new Promise((r) => setTimeout(r, BUSY_RETRY_MS));
      }
    } catch (err) {
      throw new AppError('sessions_unavailable', undefined, { cause: err });
    }
    if (!taken) {
      this.deps.metrics.refused.inc({ reason: 'session_busy' });
      throw new AppError('session_busy');
    }
    const renew = setInterval(() => {
      store.renewTurn(sessionId, requestId, limits.turnLeaseMs).catch(() => undefined);
    }, Math.max(100, Math.floor(limits.turnLeaseMs / 3)));
    renew.unref();
    return async () => {
      clearInterval(renew);
      // The turn's last frames reach the bus server before another turn may start: every member sees them first.
      let t: NodeJS.Timeout | undefined;
      await Promise.race([this.deps.bus.flush().catch(() => undefined), new Promise<void>((r) => (t = setTimeout(r, RELEASE_FLUSH_MS)))]);
      clearTimeout(t);
      await store.releaseTurn(sessionId, requestId).catch((err: unknown) => {
        this.deps.logger.warn({ err, session_id: sessionId }, 'could not release the turn (its lease ends it)');
      });
    };
  }

  private publish(sessionId: string, event: SessionEvent): void {
    try {
      this.deps.bus.publish(Subjects.sessionEvents(sessionId), encodeJson(event));
      this.fanoutOut.inc();
    } catch (err) {
      this.deps.logger.warn({ err, session_id: sessionId }, 'could not publish a session event');
    }
  }

  /** The members and their presence, to every member socket on every gateway. */
  private async announcePresence(sessionId: string): Promise<void> {
    const members = await this.view(sessionId);
    this.publish(sessionId, { frame: { type: 'presence', session_id: sessionId, members } });
  }

  private onEvent(sessionId: string, msg: BusMessage): void {
    const entry = this.local.get(sessionId);
    if (entry === undefined) return;
    let event: SessionEvent;
    try {
      event = decodeJson(SessionEventSchema, msg.data);
    } catch (err) {
      this.deps.logger.warn({ err, session_id: sessionId }, 'dropped a malformed session event');
      return;
    }
    const { frame } = event;
    if (frame.type === 'presence') entry.seen = fingerprint(frame.members);
    for (const m of [...entry.members]) {
      if (m.connKey === event.origin) continue;
      if (frame.type === 'system' && frame.event === 'mode_switched' && frame.mode !== undefined) m.modeSwitched(frame.mode);
      m.deliver(frame, event.request_id);
      this.fanoutIn.inc();
      if (event.evict !== undefined && m.userId === event.evict) m.evict();
    }
  }

  /**
   * Renew this gateway's presence entries, then re-read each session's presence: a change nobody announced
   * (another gateway's sockets timed out) goes to the member sockets here.
   */
  private async tick(): Promise<void> {
    const { store, limits, logger } = this.deps;
    for (const [sessionId, entry] of [...this.local]) {
      try {
        await Promise.all([...entry.members].map((m) => store.touchPresence(sessionId, m.connKey, m.userId, limits.presenceTtlMs)));
        const members = await this.view(sessionId);
        const now = fingerprint(members);
        if (now === entry.seen) continue;
        // Nothing seen yet (the join's own announcement failed, e.g. the store timed out): the sockets here
        // have only what they read at load, so they get the presence now, not at the next change.
        const before = entry.seen;
        entry.seen = now;
        if (before !== '' && onlineCount(now) < onlineCount(before)) this.deps.metrics.churn.inc({ change: 'timeout' });
        const frame: WsServerMessage = { type: 'presence', session_id: sessionId, members };
        for (const m of [...entry.members]) {
          m.deliver(frame);
          this.fanoutIn.inc();
        }
      } catch (err) {
        logger.warn({ err, session_id: sessionId }, 'could not renew presence');
      }
    }
  }
}

const fingerprint = (members: readonly SessionMember[]): string =>
  members.map((m) => `${m.user_id}:${m.role}:${m.connections}`).join(',');
const onlineCount = (print: string): number => print.split(',').filter((p) => p !== '' && !p.endsWith(':0')).length;
