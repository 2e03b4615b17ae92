import type { z } from 'zod';
import {
  AdminReplySchema,
  AppError,
  CacheHealthSchema,
  CacheInvalidateResultSchema,
  CacheStatsSchema,
  Headers,
  SessionHistorySchema,
  SessionListSchema,
  Subjects,
  WorkerBreakersSchema,
  WorkerPingSchema,
  decodeJson,
  encodeJson,
  isErrorCode,
  type Bus,
  type BusHeaders,
  type CacheHealth,
  type CacheInvalidateRequest,
  type CacheInvalidateResult,
  type CacheStats,
  type HistoryRequest,
  type Logger,
  type SessionHistory,
  type SessionList,
  type SessionsRequest,
  type RequestContext,
  type WorkerBreakers,
  type WorkerPing,
} from '@actionedx/shared';
import type { GatewayMetrics } from '../metrics.js';

/** Wait for an administrative reply. */
export const ADMIN_TIMEOUT_MS = 2_000;
/** Wait for a worker ping (health checks must answer quickly). */
export const PING_TIMEOUT_MS = 500;

const headersOf = (ctx: RequestContext | undefined): BusHeaders | undefined => {
  if (ctx === undefined) return undefined;
  const h: BusHeaders = { [Headers.requestId]: ctx.request_id };
  if (ctx.traceparent !== undefined) h[Headers.traceparent] = ctx.traceparent;
  return h;
};

/** The orchestrators' administrative API over bus request/reply (any worker of the queue group answers). */
export class OrchestratorAdmin {
  constructor(
    private readonly bus: Bus,
    private readonly metrics: Pick<GatewayMetrics, 'bus'>,
    private readonly logger: Logger,
  ) {}

  cacheStats(ctx?: RequestContext): Promise<CacheStats> {
    return this.call(Subjects.cacheStats, {}, CacheStatsSchema, ctx);
  }

  cacheInvalidate(request: CacheInvalidateRequest, ctx?: RequestContext): Promise<CacheInvalidateResult> {
    return this.call(Subjects.cacheInvalidate, request, CacheInvalidateResultSchema, ctx);
  }

  cacheHealth(ctx?: RequestContext): Promise<CacheHealth> {
    return this.call(Subjects.cacheHealth, {}, CacheHealthSchema, ctx);
  }

  /** A user's newest turns of a session, from the conversation store. */
  sessionHistory(request: HistoryRequest, ctx?: RequestContext): Promise<SessionHistory> {
    return this.call(Subjects.conversationHistory, request, SessionHistorySchema, ctx);
  }

  /** A user's sessions that have turns, most recently used first. */
  sessions(request: SessionsRequest, ctx?: RequestContext): Promise<SessionList> {
    return this.call(Subjects.conversationSessions, request, SessionListSchema, ctx);
  }

  /** One orchestrator's model-target breakers (each replica keeps its own). */
  breakers(ctx?: RequestContext): Promise<WorkerBreakers> {
    return this.call(Subjects.workerBreakers, {}, WorkerBreakersSchema, ctx);
  }

  /** One worker's answer and the round trip, or an AppError when none answers in time. */
  async ping(ctx?: RequestContext, timeoutMs = PING_TIMEOUT_MS): Promise<{ worker: WorkerPing; latency_ms: number }> {
    const started = performance.now();
    const worker = await this.call(Subjects.workerPing, {}, WorkerPingSchema, ctx, timeoutMs);
    return { worker, latency_ms: Math.round((performance.now() - started) * 10) / 10 };
  }

  private async call<S extends z.ZodType>(
    subject: string,
    body: unknown,
    schema: S,
    ctx: RequestContext | undefined,
    timeoutMs = ADMIN_TIMEOUT_MS,
  ): Promise<z.output<S>> {
    const started = performance.now();
    let data: Uint8Array;
    try {
      const headers = headersOf(ctx);
      const msg = await this.bus.request(subject, encodeJson(body), { timeoutMs, ...(headers ? { headers } : {}) });
      data = msg.data;
    } catch (err) {
      throw this.busError(err, subject);
    }
    this.metrics.bus.roundTrip.observe({ subject }, (performance.now() - started) / 1000);
    const reply = this.decode(AdminReplySchema, data, subject);
    if (!reply.ok) {
      const { code, message } = reply.error;
      throw isErrorCode(code) ? new AppError(code, message) : new AppError('internal', undefined, { cause: reply.error });
    }
    return this.decode(schema, encodeJson(reply.data), subject);
  }

  private decode<S extends z.ZodType>(schema: S, data: Uint8Array, subject: string): z.output<S> {
    try {
      return decodeJson(schema, data);
    } catch (err) {
      this.logger.error({ subject, err }, 'an orchestrator sent a malformed administrative reply');
      throw new AppError('internal', undefined, { cause: err });
    }
  }

  /** Bus failures are AppErrors already (no_workers, bus_unavailable); anything else is a bug. */
  private busError(err: unknown, subject: string): AppError {
    if (err instanceof AppError) return err;
    this.logger.error({ subject, err }, 'administrative bus request failed');
    return new AppError('internal', undefined, { cause: err });
  }
}
